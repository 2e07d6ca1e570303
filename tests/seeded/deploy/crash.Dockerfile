# Seeded fault: the backend image, unchanged but for a start command that exits 1 at once
# (as an app does that rejects its configuration). The migration hook overrides the command
# (`command:` in the Job), so migrations still pass and only the serving pods crash.
ARG BASE
FROM ${BASE}
CMD ["python", "-c", "import sys; sys.stderr.write('shipcheck seeded crash: refusing to start\\n'); sys.exit(1)"]
