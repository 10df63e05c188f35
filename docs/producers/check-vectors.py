"""Checks the Python (and, where node is installed, the Node) partition function against the
fixed vectors the Swift tests use. Exit status 1 on any mismatch."""
import json
import pathlib
import shutil
import subprocess
import sys

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from sg_producer import partition  # noqa: E402

vectors = json.loads((here.parent / "partition-vectors.json").read_text())["vectors"]
bad = [(v["channel"], n, p) for v in vectors for n, p in v["partitions"].items() if partition(v["channel"], int(n)) != p]
if shutil.which("node"):
    script = ("import('%s').then(m => { const v = JSON.parse(require('fs').readFileSync('%s'));"
              " let bad = 0; for (const x of v.vectors) for (const [n, p] of Object.entries(x.partitions))"
              " if (m.partition(x.channel, Number(n)) !== p) bad++; process.exit(bad ? 1 : 0); })"
              % (here / "sg-producer.mjs", here.parent / "partition-vectors.json"))
    node = subprocess.run(["node", "-e", script])
    if node.returncode != 0:
        bad.append(("node", "partition", node.returncode))
print(f"partition vectors: {len(vectors)} channels, {len(bad)} mismatches")
sys.exit(1 if bad else 0)
