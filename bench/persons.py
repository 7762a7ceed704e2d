"""One person across cameras on real clips: does ``persons.enabled`` join a person's clips and only theirs?

    python -m bench.persons --half test     # ≈ 1 min on 2 cores; prints one JSON line

Reads every clip of one half of ../shared's talking clips as one source each (as a folder of files is read: the
offline defaults, two files at a time) with ``persons.enabled=true``, and compares the ``person`` events with the
clips' people (``streamfiqa/eval/data/talking.json``): how many person events join clips of two people (a mixed
person: the merge's error), and of the people seen in more than one clip, how many come out as one person. Clips of
several people are left out of the comparison. The merge's thresholds were set on stills (README, "One person across
cameras"); this checks them on real video, fitting nothing.
"""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.persons", description=__doc__.split("\n")[0])
    p.add_argument("--half", default="test", choices=("dev", "test"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override of the offline pipeline (repeatable)")
    args = p.parse_args(argv)
    from streamfiqa.eval.videoset import read_video_set

    clips = read_video_set().half(args.half, 0)
    ids = {Path(c.name).stem: c for c in clips}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "run_stream.py"), *(f"{k}={c.path}" for k, c in ids.items()),
               "--pipeline", "offline", "--out", tmp, "--log-level", "warning", "--set", "persons.enabled=true",
               *(x for o in args.overrides for x in ("--set", o))]
        subprocess.run(cmd, check=True)
        events = [json.loads(line) for line in (Path(tmp) / "events.jsonl").read_text().splitlines()]
    people = [e for e in events if e["event"] == "person"]
    single = {k: c.person for k, c in ids.items() if c.single_person}
    mixed, persons_of = [], collections.defaultdict(set)
    for e in people:
        who = {single[s["source"]] for s in e["sightings"] if s["source"] in single}
        if len(who) > 1:
            mixed.append(sorted(who))
        for person in who:
            persons_of[person].add(e["person_id"])
    clips_of = collections.defaultdict(list)
    for k, person in single.items():
        clips_of[person].append(k)
    several = {person: len(ks) for person, ks in clips_of.items() if len(ks) > 1}
    print(json.dumps({"half": args.half, "overrides": args.overrides, "clips": len(ids), "people": len(clips_of),
                      "person_events": len(people), "mixed_persons": len(mixed), "mixed": mixed,
                      "people_in_several_clips": len(several),
                      "joined_into_one": sum(len(persons_of[p]) == 1 for p in several),
                      "persons_per_person": {p: len(persons_of[p]) for p in several}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
