#!/usr/bin/env python3
"""Validates the answers the black-box tests received against the service's OpenAPI document.

The black-box client (tests/blackbox/service_fixture.h, AnswerRecorder) appends every answer to
ANSWERS (one JSON line: port, method, target, status, headers, body) when
SHOPCQRS_BLACKBOX_RECORD=ANSWERS is set, and writes the shared service's GET /openapi.json to
ANSWERS.openapi.json at the end of the run. For each answer this script:

  - finds the operation as the router does (literal segments beat parameters; HEAD, and paths or
    methods no route serves, are counted and skipped; so are `route_not_served` answers of
    processes that do not run a role, which the document by design does not describe);
  - requires the answer's status among the operation's responses and its media type among that
    response's content types;
  - validates the body against the response's schema (JSON Schema 2020-12, python3-jsonschema),
    and every header the response marks `required` (present, and matching its schema);
  - checks the schema is strict: renaming any member of any object of the body (the first
    element of each array) must make the body invalid, so a schema that accepts everything, or a
    renamed field in the service, fails here.

It fails on any error, and when fewer than --min-operations operations of the document got a
validated answer or fewer than --min-errors distinct (operation, error status) pairs did.
"""

import argparse
import copy
import json
import sys
import urllib.parse
from collections import defaultdict

import jsonschema

JSON_MEDIA = ("application/json", "application/problem+json")


def load_answers(path):
    answers = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    answers.append(json.loads(line))
                except ValueError as e:
                    raise SystemExit(f"{path}:{number}: not JSON: {e}")
    return answers


def split(path):
    if not path.startswith("/"):
        return None
    return path[1:].split("/")


def find_operation(document, method, target):
    """(template, operation) as the router would pick it; (template, None) when the path matches
    but no route has the method; (None, None) when no path matches."""
    path = target.split("?", 1)[0]
    segments = split(path)
    if segments is None:
        return None, None
    segments = [urllib.parse.unquote(s) for s in segments]
    best, best_shape, any_match = None, None, None
    for template, item in document["paths"].items():
        parts = split(template)
        if len(parts) != len(segments):
            continue
        shape = []
        for part, segment in zip(parts, segments):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    break
                shape.append(False)
            elif part == segment:
                shape.append(True)
            else:
                break
        else:
            any_match = template
            if method in item and (best_shape is None or shape > best_shape):
                best, best_shape = template, shape
    if best is not None:
        return best, document["paths"][best][method]
    return any_match, None


def resolve(document, node):
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"]
        if not pointer.startswith("#/"):
            raise SystemExit(f"non-local $ref {pointer}")
        target = document
        for part in pointer[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


class Validators:
    """One jsonschema validator per schema, over the document's components."""

    def __init__(self, document):
        self.document = document
        self.cache = {}
        cls = jsonschema.Draft202012Validator
        for name, schema in document["components"]["schemas"].items():
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as e:
                raise SystemExit(f"components.schemas.{name} is not a valid schema: {e.message}")

    def get(self, key, schema):
        if key not in self.cache:
            root = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "allOf": [schema],
                "components": self.document["components"],
            }
            jsonschema.Draft202012Validator.check_schema(root)
            self.cache[key] = jsonschema.Draft202012Validator(root)
        return self.cache[key]


def objects_in(value, where="body"):
    """(where, object) for every object of `value`, descending into the first array element."""
    if isinstance(value, dict):
        yield where, value
        for key, child in value.items():
            yield from objects_in(child, f"{where}.{key}")
    elif isinstance(value, list) and value:
        yield from objects_in(value[0], f"{where}[0]")


def renamed(body, where, key):
    """A copy of `body` whose object at `where` has `key` renamed."""
    copied = copy.deepcopy(body)
    for target_where, target in objects_in(copied):
        if target_where == where:
            target[key + "_renamed"] = target.pop(key)
            return copied
    raise AssertionError(where)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("answers", help="the recorded answers (JSON lines)")
    parser.add_argument("--document", help="the OpenAPI document (default ANSWERS.openapi.json)")
    parser.add_argument("--min-operations", type=int, default=0)
    parser.add_argument("--min-errors", type=int, default=0)
    parser.add_argument("--max-errors-shown", type=int, default=40)
    args = parser.parse_args()

    try:
        with open(args.document or args.answers + ".openapi.json", encoding="utf-8") as f:
            document = json.load(f)
    except OSError as e:
        print(f"FAIL: no OpenAPI document from the black-box run: {e}", file=sys.stderr)
        return 1
    if document.get("openapi") != "3.1.0":
        print("FAIL: the document is not OpenAPI 3.1.0", file=sys.stderr)
        return 1
    answers = load_answers(args.answers)
    validators = Validators(document)

    errors = []
    skipped = defaultdict(int)
    covered = defaultdict(lambda: defaultdict(int))  # "METHOD template" -> status -> count
    strict_checked = set()

    def fail(answer, why):
        errors.append(f"{answer['method']} {answer['target']} -> {answer['status']}: {why}")

    for answer in answers:
        method = answer["method"].lower()
        if method == "head":
            skipped["HEAD (no body)"] += 1
            continue
        template, operation = find_operation(document, method, answer["target"])
        if template is None:
            skipped["no route has this path"] += 1
            continue
        if operation is None:
            skipped["no route has this method"] += 1
            continue
        headers = answer["headers"]
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        body_text = answer["body"]
        body = None
        if media in JSON_MEDIA:
            try:
                body = json.loads(body_text)
            except ValueError as e:
                fail(answer, f"{media} body is not JSON: {e}")
                continue
        if isinstance(body, dict) and body.get("code") == "route_not_served":
            skipped["route_not_served (a role the process does not run)"] += 1
            continue

        name = f"{method.upper()} {template}"
        status = str(answer["status"])
        response = operation["responses"].get(status)
        if response is None:
            fail(answer, f"status {status} is not described for {name} "
                         f"(described: {', '.join(sorted(operation['responses']))}); "
                         f"body {body_text[:300]}")
            continue
        response = resolve(document, response)
        content = response.get("content", {})
        if not content:
            if body_text:
                fail(answer, f"{name} {status} is described without a body, but has one")
            else:
                covered[name][status] += 1
            continue
        if media not in content:
            fail(answer, f"media type {media!r} is not described for {name} {status} "
                         f"(described: {', '.join(content)})")
            continue
        schema = content[media]["schema"]
        validator = validators.get((name, status, media), schema)
        value = body if media in JSON_MEDIA else body_text
        problems = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if problems:
            for problem in problems[:3]:
                at = "/".join(str(p) for p in problem.absolute_path)
                fail(answer, f"body does not match the schema of {name} {status} at /{at}: "
                             f"{problem.message[:300]}")
            continue
        for header_name, header in response.get("headers", {}).items():
            header = resolve(document, header)
            value_of = headers.get(header_name.lower())
            if value_of is None:
                if header.get("required"):
                    fail(answer, f"required header {header_name} is missing")
                continue
            header_validator = validators.get(("header", header_name), header["schema"])
            for problem in header_validator.iter_errors(value_of):
                fail(answer, f"header {header_name}: {problem.message[:200]}")
        # Strictness: any renamed member makes the body invalid (only the top level's for a
        # schema marked "x-shopcqrs-strict": "top-level": the document itself).
        if isinstance(body, (dict, list)):
            top_level_only = resolve(document, schema).get("x-shopcqrs-strict") == "top-level"
            for where, obj in list(objects_in(body)):
                if top_level_only and where != "body":
                    continue
                for key in list(obj):
                    check = (name, status, where, key)
                    if check in strict_checked:
                        continue
                    strict_checked.add(check)
                    if validator.is_valid(renamed(body, where, key)):
                        fail(answer, f"the schema of {name} {status} still accepts the body "
                                     f"with {where}.{key} renamed")
        covered[name][status] += 1

    operations = [f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item]
    error_pairs = sum(1 for name in covered for status in covered[name] if status[0] in "45")
    validated = sum(sum(s.values()) for s in covered.values())
    print(f"{len(answers)} answers recorded; {validated} validated, of {len(covered)} of the "
          f"document's {len(operations)} operations; {error_pairs} (operation, error status) "
          f"pairs; {len(strict_checked)} renamings refused")
    for name in operations:
        statuses = covered.get(name)
        described = ",".join(f"{s}x{n}" for s, n in sorted(statuses.items())) if statuses else "-"
        print(f"  {name:45} {described}")
    for why, count in sorted(skipped.items()):
        print(f"  skipped {count}: {why}")

    failed = False
    if errors:
        failed = True
        print(f"FAIL: {len(errors)} answers do not match the document:", file=sys.stderr)
        for error in errors[: args.max_errors_shown]:
            print("  " + error, file=sys.stderr)
    if len(covered) < args.min_operations:
        failed = True
        print(f"FAIL: only {len(covered)} operations validated (at least {args.min_operations})",
              file=sys.stderr)
    if error_pairs < args.min_errors:
        failed = True
        print(f"FAIL: only {error_pairs} (operation, error status) pairs validated "
              f"(at least {args.min_errors})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
