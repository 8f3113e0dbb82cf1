"""`python -m experiments.restore ...`: the restore program (diffnet_tf/cli/restore.py,
installed as `diffnet-restore`), run from the repository."""

from diffnet_tf.cli import restore

if __name__ == "__main__":
    restore.run()
