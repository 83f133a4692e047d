"""The experiments behind the method: the hyper-parameter study (scales, plan of runs, running
them, claims across seeds, report) and the polyphonic likelihood benchmark (`benchmark`)."""
