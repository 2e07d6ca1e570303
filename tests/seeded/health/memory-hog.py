"""Seeded fault (backend container): memory that grows and is never given back, as a leak
would. Run inside the container through the API server's exec (`python3 -c <this> MIB`): it
holds MIB MiB of touched (resident) memory until it is sent SIGTERM (its PID is in
/tmp/memory-hog.pid), or for 300 s at most, then exits."""
import os
import sys
import time

mib = int(sys.argv[1])
held = b"\x01" * (mib << 20)  # written, so every page is resident and counts in the working set
with open("/tmp/memory-hog.pid", "w") as pid_file:
    pid_file.write(str(os.getpid()))
print(f"holding {len(held) >> 20} MiB", flush=True)
time.sleep(300)
