#!/usr/bin/python3
"""Validate TOML route specs against the gw JSON Schema (specs/gw.schema.json), or OpenAPI
documents against the schema of gw's extensions (specs/gw-openapi.schema.json).

usage: schema_check.py [--expect-invalid] SCHEMA SPEC...

Each SPEC is parsed (TOML; .json and .yaml as such), converted to JSON and validated against SCHEMA. Problems are
printed as "FILE: /json/pointer: message".

Exit status:
  0   every spec is valid (or, with --expect-invalid, every spec is rejected)
  1   some spec is not (or cannot be read or parsed as TOML: that is never the expected failure)
  2   bad usage, or SCHEMA is not a usable JSON Schema
  77  the jsonschema module is missing (CTest reports the test as skipped)

With --expect-invalid, a spec may name the error it exists to provoke with a comment line
"# expect-error: /json/pointer"; it then passes only if the schema reports an error at exactly
that pointer, so a sample that fails for an unrelated reason (a typo) is caught.
"""

import argparse
import datetime
import json
import re
import sys
import tomllib

try:
    import jsonschema
    from jsonschema import exceptions as js_exceptions
except ImportError:
    print("schema_check.py: the jsonschema module is missing (apt-get install python3-jsonschema)",
          file=sys.stderr)
    sys.exit(77)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXPECT_RE = re.compile(r"^#\s*expect-error:\s*(\S*)\s*$", re.MULTILINE)


def to_json(value):
    """TOML value -> JSON value. Dates and times become their text, as the C++ reader keeps them."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return value


def make_validator(schema):
    """A validator for the schema's own draft, with TOML's notion of integers.

    JSON Schema (draft 6 on) counts 1.0 as an integer, but TOML keeps integers and floats apart
    and the reader rejects `retries = 1.0`; redefining "integer" keeps this check as strict.
    """
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    strict_int = cls.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(cls, type_checker=strict_int)(schema)


def pointer(path):
    """RFC 6901 JSON pointer for a jsonschema error path; the document root is ""."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def only_required(branches):
    """The keys of alternatives written as [{"required": [k]}, ...], else None."""
    keys = []
    for b in branches:
        if not isinstance(b, dict) or set(b) != {"required"} or len(b["required"]) != 1:
            return None
        keys.append(b["required"][0])
    return keys


def describe(error):
    """(pointer, message) pairs for one validation error, worded for spec authors.

    jsonschema's own messages repeat the whole offending value (a full route for a oneOf), so
    the common shapes of this schema get shorter wording that names the keys involved.
    """
    where = list(error.absolute_path)
    inst = error.instance
    kind = error.validator
    if kind == "additionalProperties" and isinstance(inst, dict):
        known = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extra = [k for k in inst if k not in known and not any(p.search(k) for p in patterns)]
        if extra:
            return [(pointer(where + [k]), "unknown key " + json.dumps(k)) for k in extra]
    if kind in ("oneOf", "anyOf"):
        keys = only_required(error.validator_value)
        if keys is not None and not isinstance(inst, dict):
            # "required" ignores non-tables, so every alternative "matches"; the value's type
            # error is reported on its own.
            return []
        if keys is not None:
            present = [k for k in keys if k in inst]
            if not present:
                return [(pointer(where), "needs exactly one of " + ", ".join(keys))]
            return [(pointer(where), "has more than one of " + ", ".join(present))]
        if error.context:
            # No alternative fits. Alternatives for another type of value (a string where a
            # table was written) say nothing useful; report the rest, or the closest one.
            branches = {}
            for e in error.context:
                branches.setdefault(e.relative_schema_path[0], []).append(e)
            fits = [errs for errs in branches.values()
                    if not any(e.validator == "type" and not e.relative_path for e in errs)]
            errs = fits[0] if len(fits) == 1 else [js_exceptions.best_match(error.context)]
            return [d for e in errs for d in describe(e)]
        return [(pointer(where), "matches more than one of the allowed forms")]
    if kind == "not":
        # The schema words each "not" as a description of what it forbids.
        nots = error.validator_value
        why = nots.get("description") if isinstance(nots, dict) else None
        if isinstance(inst, (dict, list)):
            return [(pointer(where), why or "this combination is not allowed")]
        suffix = f": {why}" if why else ""
        return [(pointer(where), f"{json.dumps(inst)} is not allowed{suffix}")]
    message = error.message
    if {"then", "dependencies"} & set(error.schema_path) and error.schema.get("description"):
        # A rule between keys (if/then, dependencies): say which rule, not just what is missing.
        message += " (" + error.schema["description"] + ")"
    return [(pointer(where), message)]


def errors_of(validator, doc):
    out = []
    for e in validator.iter_errors(doc):
        out.extend(describe(e))
    return sorted(set(out))


def load_spec(path):
    """The document as JSON and its expected-error pointers: TOML specs, or OpenAPI documents
    (.json, .yaml) for the extensions schema. Raises OSError, TOMLDecodeError or ValueError."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    if path.endswith(".json"):
        doc = json.loads(text)
    elif path.endswith((".yaml", ".yml")):
        import yaml  # Debian: python3-yaml; only the OpenAPI samples need it
        try:
            doc = json.loads(json.dumps(yaml.safe_load(text), default=str))
        except yaml.YAMLError as e:
            raise ValueError(str(e)) from e
    else:
        doc = to_json(tomllib.loads(text))
    return doc, EXPECT_RE.findall(text)


def main(argv):
    ap = argparse.ArgumentParser(
        description="Validate TOML route specs against the gw JSON Schema.")
    ap.add_argument("--expect-invalid", action="store_true",
                    help="succeed only if every SPEC is rejected by the schema")
    ap.add_argument("schema", metavar="SCHEMA", help="the JSON Schema (specs/gw.schema.json)")
    ap.add_argument("specs", metavar="SPEC", nargs="+", help="TOML spec files")
    args = ap.parse_args(argv)

    try:
        with open(args.schema, encoding="utf-8") as f:
            validator = make_validator(json.load(f))
    except (OSError, ValueError, js_exceptions.SchemaError) as e:
        print(f"{args.schema}: not a usable JSON Schema: {e}", file=sys.stderr)
        return EXIT_USAGE

    failed = False
    for path in args.specs:
        try:
            doc, expected = load_spec(path)
        except (OSError, UnicodeDecodeError) as e:
            print(f"{path}: cannot read: {e}")
            failed = True
            continue
        except (tomllib.TOMLDecodeError, ValueError) as e:
            print(f"{path}: cannot parse: {e}")
            failed = True
            continue

        errors = errors_of(validator, doc)
        if not args.expect_invalid:
            for p, msg in errors:
                print(f"{path}: {p or '(top level)'}: {msg}")
            failed = failed or bool(errors)
        elif not errors:
            print(f"{path}: accepted, but it should be rejected")
            failed = True
        else:
            found = {p for p, _ in errors}
            missing = [p for p in expected if p not in found]
            for p in missing:
                print(f"{path}: rejected, but not at {p or '(top level)'} as its expect-error says")
            label = "rejected" if missing else "rejected as expected"
            for p, msg in errors:
                print(f"{path}: {label}: {p or '(top level)'}: {msg}")
            failed = failed or bool(missing)
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
