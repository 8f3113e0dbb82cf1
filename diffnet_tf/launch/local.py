"""The local executor: a study's cells one after another in the program's own process (the
default; its output is the program's, as before the launcher existed)."""


class LocalExecutor:
    """Runs each job in this process, in order."""

    name = "local"
    remote = False  # cells run in this process: no worker.log, threads not capped
    cpus_per_cell = None

    def run(self, function, jobs):
        """Yields (job.key, function(job)) as each job ends, or the exception it raised."""
        for job in jobs:
            try:
                yield job.key, function(job)
            except Exception as error:  # the launcher reports it; the next job goes on
                yield job.key, error

    def running(self, pending):
        """Nothing runs between two jobs here."""
        del pending
        return 0
