#!/usr/bin/env python3
"""Validates recorded HTTP responses against the official Chatbase v2 OpenAPI document
(shared/reference/chatbase-openapi-v2-core.json, read in place, never copied).

Usage: python3 compat/openapi_check.py TRANSCRIPT.jsonl [...] [--spec FILE]

A transcript line is {"method", "url", "status", "headers", "body", ...} as written by
ai-stream.mjs and compat_common.Recorder. For each response under /api/v2:
- the request path is matched to the spec's path template (literal segments win over
  parameters, so /conversations/export is not /conversations/{conversationId});
- the response is looked up by status code, then by content type;
- application/json bodies are validated against that response's schema;
- text/event-stream bodies are split into `data: ` frames and every chunk's
  `messageMetadata` is validated against StreamFinishMetadata (the chat operation's
  event-stream schema; the retry operation declares only `type: string` for the whole
  body, and its chunks are the same, so they are held to StreamFinishMetadata too).
An error status the operation does not list is still validated against ErrorResponse
and reported as a note; an undocumented success status, content type or path fails.

Validator: Python `jsonschema` with Draft202012Validator. OpenAPI 3.1 schemas are JSON
Schema 2020-12 (type arrays such as ["string","null"], `enum` containing null), and the
whole document is registered as one 2020-12 resource with `referencing`, so every
"#/components/schemas/..." reference resolves inside the official document itself.
Formats are asserted where jsonschema has a checker for them.

Prints a JSON report {checked, failures, notes, covered} and exits 1 on any failure."""

import argparse
import importlib.metadata
import json
import re
import sys
import urllib.parse

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from compat_common import reference_file

SPEC_URI = "urn:agentbase:chatbase-openapi-v2-core"
V2_PREFIX = "/api/v2"
# agentbase's documented extensions of the contract (retrieval testing, training
# jobs, client actions): recorded as notes, not checked against the official spec.
EXTENSION = re.compile(r"^/agents/[^/]+/(search|training-jobs|actions)$")


def pointer(*parts) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        self.templates = []
        for template in self.doc["paths"]:
            segments = template.strip("/").split("/")
            regex = "^/" + "/".join(
                "[^/]+" if s.startswith("{") else re.escape(s) for s in segments
            ) + "/?$"
            literal = sum(1 for s in segments if not s.startswith("{"))
            self.templates.append((template, re.compile(regex), len(segments), literal))

    def match(self, path):
        hits = [t for t in self.templates if t[1].match(path)]
        if not hits:
            return None
        return max(hits, key=lambda t: (t[3], t[2]))[0]

    def validate(self, instance, json_pointer):
        """Errors of `instance` against the schema at `json_pointer` in the document."""
        ref = SPEC_URI + "#" + urllib.parse.quote(json_pointer, safe="/~")
        validator = jsonschema.Draft202012Validator(
            {"$ref": ref},
            registry=self.registry,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        return sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))


def describe(error):
    return {
        "instancePath": "/" + "/".join(str(p) for p in error.absolute_path),
        "schemaPath": "/" + "/".join(str(p) for p in error.absolute_schema_path),
        "message": error.message[:500],
    }


def sse_chunks(body):
    """The JSON chunks of a UI message stream (framing is checked elsewhere)."""
    chunks = []
    for frame in body.split("\n\n"):
        for line in frame.split("\n"):
            if line.startswith("data: ") and line != "data: [DONE]":
                try:
                    chunks.append(json.loads(line[len("data: "):]))
                except ValueError:
                    chunks.append({"__unparsable__": line[:200]})
    return chunks


def check(spec, entry, report):
    method = entry["method"].lower()
    url = urllib.parse.urlsplit(entry["url"])
    where = f'{entry["method"]} {url.path}{"?" + url.query if url.query else ""} -> {entry["status"]}'
    context = {"client": entry.get("client"), "case": entry.get("case"), "request": where}
    if not url.path.startswith(V2_PREFIX + "/"):
        report["notes"].append({**context, "note": "outside the v2 API: not in the OpenAPI document"})
        return
    path = url.path[len(V2_PREFIX):]
    template = spec.match(path)
    if template is None and EXTENSION.match(path):
        report["notes"].append({**context, "note": "agentbase extension: not in the official spec"})
        return
    if template is None:
        report["failures"].append({**context, "error": "path not in the official spec"})
        return
    operation = spec.doc["paths"][template].get(method)
    if operation is None:
        report["failures"].append({**context, "error": f"method not in the official spec for {template}"})
        return
    status = str(entry["status"])
    responses = operation.get("responses", {})
    key = status if status in responses else f"{status[0]}XX" if f"{status[0]}XX" in responses else None
    if key is None and "default" in responses:
        key = "default"
    content_type = (entry["headers"].get("content-type") or "").split(";")[0].strip().lower()
    label = f'{entry["method"].upper()} {template} {status}'
    report["checked"] += 1
    if key is None:
        if entry["status"] >= 400:
            report["notes"].append({**context, "note": f"status {status} is not listed for {entry['method'].upper()} {template}; body checked against ErrorResponse"})
            schema_ptr = pointer("components", "schemas", "ErrorResponse")
            validate_json(spec, entry, schema_ptr, context, report)
            report["covered"].add(label + " (undocumented status)")
        else:
            report["failures"].append({**context, "error": f"success status {status} is not documented for {entry['method'].upper()} {template}"})
        return
    content = responses[key].get("content", {})
    if content_type not in content:
        if not content and not entry["body"]:
            report["covered"].add(label)
            return
        report["failures"].append({**context, "error": f"content type {content_type!r} not documented (documented: {sorted(content)})"})
        return
    if content_type == "text/event-stream":
        schema = content[content_type].get("schema", {})
        if schema.get("type") == "object" or "$ref" in schema:
            metadata_ptr = pointer("paths", template, method, "responses", key, "content", content_type, "schema")
        else:
            metadata_ptr = pointer("components", "schemas", "StreamFinishMetadata")
        seen = 0
        for i, chunk in enumerate(sse_chunks(entry["body"])):
            if "__unparsable__" in chunk:
                report["failures"].append({**context, "chunk": i, "error": "frame is not JSON", "frame": chunk["__unparsable__"]})
                continue
            if "messageMetadata" in chunk:
                seen += 1
                for error in spec.validate(chunk["messageMetadata"], metadata_ptr):
                    report["failures"].append({**context, "chunk": i, "chunkType": chunk.get("type"), "schema": metadata_ptr, **describe(error)})
        if seen == 0:
            errored = any(c.get("type") == "error" for c in sse_chunks(entry["body"]))
            (report["notes"] if errored else report["failures"]).append(
                {**context, "error": "no chunk carries messageMetadata"
                 + (" (the stream ended with an error chunk)" if errored else "")})
        report["covered"].add(label + " (stream)")
        return
    schema_ptr = pointer("paths", template, method, "responses", key, "content", content_type, "schema")
    validate_json(spec, entry, schema_ptr, context, report)
    report["covered"].add(label)


def validate_json(spec, entry, schema_ptr, context, report):
    try:
        body = json.loads(entry["body"])
    except ValueError:
        report["failures"].append({**context, "error": "body is not JSON", "body": entry["body"][:500]})
        return
    for error in spec.validate(body, schema_ptr):
        report["failures"].append({**context, "schema": schema_ptr, **describe(error)})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("transcripts", nargs="+")
    parser.add_argument("--spec", help="the OpenAPI document (default: shared/reference)")
    args = parser.parse_args(argv)
    spec = Spec(args.spec or reference_file("chatbase-openapi-v2-core.json"))
    report = {"checked": 0, "failures": [], "notes": [], "covered": set()}
    for path in args.transcripts:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    check(spec, json.loads(line), report)
    report["covered"] = sorted(report["covered"])
    report["validator"] = f"jsonschema {importlib.metadata.version('jsonschema')} Draft202012Validator"
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if report["failures"] or report["checked"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
