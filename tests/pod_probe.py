"""Run by tests/test_pods.py as `python -m tests.pod_probe`: reports what a process sees."""

import atexit
import os
import subprocess
import sys
import time

if __name__ == "__main__":
    atexit.register(lambda: print("exiting", flush=True))
    print(f"argv={sys.argv[1:]} cwd={os.getcwd()} probe={os.environ.get('PROBE')}")
    print("to stderr", file=sys.stderr)
    if sys.argv[1] == "hang":
        child = subprocess.Popen(["sleep", "600"])
        with open(sys.argv[2], "w") as f:
            f.write(str(child.pid))
        time.sleep(600)
    sys.exit(int(sys.argv[1]))
