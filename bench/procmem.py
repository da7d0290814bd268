"""Memory figures of a process from /proc (Linux), for the bench scripts."""
import resource


def status_mib(field, pid="self"):
    """A memory field of /proc/<pid>/status (VmHWM, VmRSS, RssShmem...) in MiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0            # kB
    except OSError:
        pass
    return None


def peak_rss_mib(pid="self"):
    """A process's peak resident set size, MiB. VmHWM where Linux has it: ru_maxrss
    survives exec, so a child of a large process would report its parent's peak."""
    peak = status_mib("VmHWM", pid)
    if peak is None and pid == "self":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return peak
