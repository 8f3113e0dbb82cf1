"""The command line of the paper's programs: one table of flags, one registry of programs,
the process start-up, the run report, and the restore program (`diffnet-restore`).

A program (experiments/<name>.py, or restore.py here) looks like this:

    from diffnet_tf.cli import programs, startup

    FLAGS = programs.flag_values("perona_malik")    # its flags, from the registry

    def main(argv):                                 # the only reader of FLAGS
        values, verbose = startup.begin("perona_malik", FLAGS)
        ...

    if __name__ == "__main__":
        startup.start(main, FLAGS, __doc__)

Modules:
    flag_table      every flag of every program, defined once (help, default, spec fields)
    programs        the registry: each program's flags, defaults and protocols; command_for
    spec_flags      flag values -> RunSpec fields, and library messages naming the flags
    arguments       flag values -> noise-level lists, the distribution strategy
    startup         the process: parsing, errors as one line, the library's messages; begin
    stderr_filter   TensorFlow's start-up lines dropped from stderr (standard library only)
    report          what a program prints about a finished run
    restore         the restore program (`diffnet-restore`, `python -m experiments.restore`)
"""
