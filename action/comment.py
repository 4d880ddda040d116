"""Post or update the ONE qatlan plan comment on a pull request (a step of action.yml).

    python3 comment.py PLAN_JSON COMMENT_MD --pr N [--repo OWNER/NAME]

The comment starts with a hidden marker that ties it to the plan that gets applied:

    <!-- qatlan:plan checksum=<the plan file's checksum> serial=<the state serial it was made from> -->

The pull request's comments are searched for the marker's prefix (`<!-- qatlan:plan `): the
first one found is edited in place, so every push updates the same comment; without one, a new
comment is posted. Talks to GitHub only through `gh api` (GH_TOKEN in the environment), so a
fake `gh` on PATH can stand in for GitHub. Writes `comment-id=` and `comment-action=` to
$GITHUB_OUTPUT when it is set. Standard library only: it runs before or beside any venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER_PREFIX = "<!-- qatlan:plan "
#: the longest comment GitHub accepts
GITHUB_LIMIT = 65536


def marker(plan_file: Path) -> str:
    doc = json.loads(plan_file.read_text(encoding="utf-8"))
    return f"{MARKER_PREFIX}checksum={doc['checksum']} serial={doc['plan']['base']['serial']} -->"


def fit(body: str, limit: int = GITHUB_LIMIT) -> str:
    """The body cut at a line boundary to at most `limit` characters, with an open code fence
    and an open <details> closed, and a line that says so (`--markdown` alone fits the limit;
    the marker is what may push it over)."""
    if len(body) <= limit:
        return body
    note = "\n_The plan is cut here to fit GitHub's comment limit: the artifact has all of it._\n"
    room = limit - len(note) - len("```\n</details>\n")
    lines, used = [], 0
    for line in body.splitlines(keepends=True):
        if used + len(line) > room:
            break
        lines.append(line)
        used += len(line)
    text = "".join(lines)
    if sum(1 for line in lines if line.startswith("```")) % 2:
        text += "```\n"
    if text.count("<details>") > text.count("</details>"):
        text += "</details>\n"
    return text + note


def gh_api(*args: str) -> str:
    done = subprocess.run(["gh", "api", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"gh api {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def json_values(text: str) -> list:
    """`gh api --paginate` prints one JSON array per page, back to back: all their items."""
    decoder, items, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        value, i = decoder.raw_decode(text, i)
        items.extend(value if isinstance(value, list) else [value])
    return items


def find_comment(repo: str, pr: str) -> int | None:
    comments = json_values(gh_api("--paginate", f"repos/{repo}/issues/{pr}/comments?per_page=100"))
    for comment in comments:
        if MARKER_PREFIX in (comment.get("body") or ""):
            return int(comment["id"])
    return None


def post_or_update(repo: str, pr: str, body: str) -> tuple[str, int]:
    existing = find_comment(repo, pr)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"body": body}, f)
    try:
        if existing is None:
            answer = gh_api("--method", "POST", f"repos/{repo}/issues/{pr}/comments", "--input", f.name)
            return "created", int(json.loads(answer)["id"])
        gh_api("--method", "PATCH", f"repos/{repo}/issues/comments/{existing}", "--input", f.name)
        return "updated", existing
    finally:
        os.unlink(f.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path, help="plan.json from `qatlan plan --out`")
    parser.add_argument("comment", type=Path, help="the markdown from `qatlan plan --markdown`")
    parser.add_argument("--pr", required=True, help="pull request number")
    parser.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""), help="OWNER/NAME")
    args = parser.parse_args(argv)
    if not args.repo:
        parser.error("--repo or GITHUB_REPOSITORY is required")
    body = fit(marker(args.plan) + "\n" + args.comment.read_text(encoding="utf-8"))
    action, comment_id = post_or_update(args.repo, args.pr, body)
    print(f"qatlan: {action} comment {comment_id} on {args.repo}#{args.pr}")
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write(f"comment-id={comment_id}\ncomment-action={action}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
