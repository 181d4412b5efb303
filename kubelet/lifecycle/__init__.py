"""The pod lifecycle: the sync loop (agent), one worker per pod, the pure plan (actions), status, CrashLoopBackOff, events, termination and probe wiring."""
