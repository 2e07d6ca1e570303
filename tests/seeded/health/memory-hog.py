"""Seeded fault (backend container): memory that grows and is never given back, as a leak
would. Run inside the container by `kubectl exec -i ... python3 -c <this> MIB`: it holds MIB
MiB of touched (resident) memory until its stdin closes, or 300 s at most, then exits."""
import select
import sys

mib = int(sys.argv[1])
held = b"\x01" * (mib << 20)  # written, so every page is resident and counts in the working set
print(f"holding {len(held) >> 20} MiB", flush=True)
select.select([sys.stdin], [], [], 300)
