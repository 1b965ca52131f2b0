#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A loopback imitation of the HuggingFace hub's file downloads, for the
tests of gst-clip pull. It answers {repo}/resolve/{revision}/{file} as the
hub does: an LFS file (*.safetensors, *.bin) with a 302 to its blob URL and
X-Linked-Etag (the sha256) and X-Linked-Size, any other file with a 200 and
its git blob id as ETag; every answer carries X-Repo-Commit. A missing file
is a 404 (X-Error-Code: EntryNotFound), an unknown repository or revision a
401 or 404 as on the hub, a gated repository a 401 without the token, and a
renamed repository a 307 relative to the hub.
Blobs honour Range. Binds 127.0.0.1 on a free port and writes the port to
--port-file; logs one line per request to --log.

Usage: hub-server.py --port-file F --log F [--token T] [--cut FILE]
         [--corrupt FILE] [--no-size] [--renamed OLD=NEW]... REPO=FOLDER[:gated]...
"""
import argparse
import hashlib
import http.server
import os
import sys
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".bin")
# The revisions every repository has; each is its own commit.
REVISIONS = ("main", "v1.0")


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, name, folder, gated):
        self.name, self.folder, self.gated = name, folder, gated
        self.commits = {
            rev: hashlib.sha1(f"{name}@{rev}".encode()).hexdigest()
            for rev in REVISIONS
        }

    def commit_for(self, revision):
        if revision in self.commits:
            return self.commits[revision]
        if revision in self.commits.values():
            return revision
        return None


def make_handler(args, repos):
    blobs = {}  # sha256 -> path
    cut_done = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def log_request_line(self):
            with open(args.log, "a") as log:
                auth = "auth" if self.headers.get("Authorization") else "-"
                rng = self.headers.get("Range") or "-"
                log.write(f"{self.command} {self.path} {rng} {auth}\n")

        def answer(self, status, headers=(), body=b""):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.handle_any()

        def do_GET(self):
            self.handle_any()

        def handle_any(self):
            self.log_request_line()
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            if path.startswith("/lfs/"):
                return self.send_blob(path[len("/lfs/"):])
            parts = path.lstrip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self.answer(404, [("X-Error-Code", "EntryNotFound")])
            renamed = args.renamed.get("/".join(parts[:2]))
            if renamed:
                # A renamed repository: a redirect relative to the hub.
                rest = "/".join(parts[2:])
                return self.answer(307, [("Location", f"/{renamed}/{rest}")])
            repo = repos.get("/".join(parts[:2]))
            if repo is None:
                # The hub does not tell a missing repository from a private one.
                return self.answer(401, [("X-Error-Code", "RepoNotFound")])
            if repo.gated and self.headers.get("Authorization") != f"Bearer {args.token}":
                return self.answer(401, [("X-Error-Code", "GatedRepo")])
            commit = repo.commit_for(parts[3])
            if commit is None:
                return self.answer(404, [("X-Error-Code", "RevisionNotFound")])
            file = "/".join(parts[4:])
            local = os.path.join(repo.folder, file)
            if not os.path.isfile(local):
                return self.answer(404, [("X-Error-Code", "EntryNotFound"),
                                         ("X-Repo-Commit", commit)])
            with open(local, "rb") as f:
                data = f.read()
            if file.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                blobs[sha] = local
                host = f"http://127.0.0.1:{self.server.server_port}"
                return self.answer(302, [
                    ("Location", f"{host}/lfs/{sha}?file={urllib.parse.quote(file)}"),
                    ("X-Repo-Commit", commit),
                    ("X-Linked-Etag", f'"{sha}"'),
                    ("ETag", f'"{git_blob_id(data)}"'),
                ] + ([] if args.no_size else [("X-Linked-Size", str(len(data)))]))
            etag = git_blob_id(data)
            if file == args.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            return self.answer(200, [("X-Repo-Commit", commit),
                                     ("ETag", f'"{etag}"')], data)

        def send_blob(self, sha):
            local = blobs.get(sha)
            if local is None:
                return self.answer(404)
            with open(local, "rb") as f:
                data = f.read()
            name = os.path.basename(local)
            if name == args.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
            if start >= len(data):
                return self.answer(416, [("Content-Range", f"bytes */{len(data)}")])
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range",
                                 f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if self.command == "HEAD":
                return
            if name == args.cut and name not in cut_done:
                # Half the bytes, then the connection is gone.
                cut_done.add(name)
                self.wfile.write(data[start:start + (len(data) - start) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data[start:])

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--token", default="secret")
    parser.add_argument("--cut", help="cut the first download of this file")
    parser.add_argument("--corrupt", help="serve this file with a flipped bit")
    parser.add_argument("--no-size", action="store_true",
                        help="no X-Linked-Size: the client cannot know a blob's size")
    parser.add_argument("--renamed", action="append", default=[],
                        help="OLD=NEW: OLD redirects to the repository NEW")
    parser.add_argument("repos", nargs="+")
    args = parser.parse_args()
    args.renamed = dict(spec.split("=", 1) for spec in args.renamed)
    repos = {}
    for spec in args.repos:
        name, folder = spec.split("=", 1)
        gated = folder.endswith(":gated")
        repos[name] = Repo(name, folder.removesuffix(":gated"), gated)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), make_handler(args, repos))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
