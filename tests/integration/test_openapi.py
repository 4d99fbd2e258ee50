"""OpenAPI documents served by a real gwd: routes imported from a YAML description reach the
right backend with the path as written, a TOML spec supplies what the document cannot, reloads
take a changed document, a broken one is refused while the old table serves, and the TOML that
`gwctl openapi import` writes routes exactly like the document it came from."""
import os
import unittest

from harness import Gateway, GatewayTest, control, gwctl, request

DOC = """\
openapi: 3.1.0
info: {{title: Pets, version: "1.0"}}
servers:
  - url: http://{a}/api
paths:
  /pets:
    get: {{operationId: listPets, responses: {{"200": {{description: ok}}}}}}
    post: {{operationId: createPet, x-gw-max-body: 16, responses: {{"201": {{description: ok}}}}}}
  /pets/mine:
    get: {{operationId: myPets, responses: {{"200": {{description: ok}}}}}}
  /pets/{{id}}:
    get: {{operationId: getPet, responses: {{"200": {{description: ok}}}}}}
  /files/{{name}}.{{ext}}:
    get: {{operationId: getFile, responses: {{"200": {{description: ok}}}}}}
  /legacy/{{id}}:
    x-gw-upstream: legacy
    get: {{operationId: legacyGet, responses: {{"200": {{description: ok}}}}}}
{extra}"""

OVERLAY = """\
version = 1
[upstreams.legacy]
endpoints = ["{b}"]
"""


class OpenApiServing(GatewayTest):
    BACKENDS = ("a", "b")

    @classmethod
    def start_gateway(cls):
        cls.a, cls.b = cls.backends["a"], cls.backends["b"]
        cls.doc = cls.write("pets.yaml", DOC.format(a=cls.a.address, extra=""))
        cls.overlay = cls.write("overlay.toml", OVERLAY.format(b=cls.b.address))
        gw = Gateway(cls.tmp.name, inputs=(cls.doc, cls.overlay))
        cls.port, cls.sock = gw.port, gw.control
        return gw

    def get(self, path, method="GET", body=b""):
        return request(self.port, method, path, body=body)

    def routed(self, path, method="GET"):
        r = self.get(path, method)
        self.assertEqual(r.status, 200, f"{method} {path}: {r.status} {r.body[:200]!r}")
        return r.json()

    def test_operations_reach_their_backend_with_the_path_as_written(self):
        e = self.routed("/api/pets")
        self.assertEqual((e["backend"], e["method"], e["target"]), ("a", "GET", "/api/pets"))
        self.assertEqual(self.routed("/api/pets/mine")["target"], "/api/pets/mine")
        self.assertEqual(self.routed("/api/pets/7?x=1")["target"], "/api/pets/7?x=1")
        self.assertEqual(self.routed("/api/files/report.tar.gz")["target"], "/api/files/report.tar.gz")
        self.assertEqual(self.routed("/api/legacy/3")["backend"], "b")

    def test_what_the_document_does_not_describe_is_not_routed(self):
        self.assertEqual(self.get("/pets").status, 404)           # no base path
        self.assertEqual(self.get("/api/pets/7/toys").status, 404)
        self.assertEqual(self.get("/api/files/noext").status, 404)
        self.assertEqual(self.get("/api/pets", "DELETE").status, 405)

    def test_extensions_apply(self):
        self.assertEqual(self.get("/api/pets", "POST", body=b"x" * 8).status, 200)
        self.assertEqual(self.get("/api/pets", "POST", body=b"x" * 17).status, 413)

    def test_reload_takes_a_changed_document_and_refuses_a_broken_one(self):
        extra = "  /toys:\n    get: {operationId: listToys, responses: {\"200\": {description: ok}}}\n"
        v2 = self.write("pets-v2.yaml", DOC.format(a=self.a.address, extra=extra))
        r = gwctl("reload", v2, self.overlay, socket_path=self.sock)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.routed("/api/toys")["target"], "/api/toys")
        broken = self.write("broken.yaml", DOC.format(a=self.a.address, extra="  /x: {get: [}\n"))
        gen = control(self.sock, "show info")["result"]["table"]["generation"]
        r = gwctl("reload", broken, self.overlay, socket_path=self.sock)
        self.assertEqual(r.returncode, 1)
        self.assertIn("broken.yaml:", r.stderr)
        self.assertIn("error[openapi.syntax]", r.stderr)
        self.assertEqual(control(self.sock, "show info")["result"]["table"]["generation"], gen)
        self.assertEqual(self.routed("/api/toys")["backend"], "a")

    def test_imported_toml_routes_like_the_document(self):
        out = os.path.join(self.tmp.name, "imported.toml")
        # x-gw-upstream names an upstream the document does not define: --upstream defines it.
        r = gwctl("openapi", "import", self.doc, "--upstream", f"legacy=http://{self.b.address}",
                  "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("6 operations -> 6 routes", r.stdout)
        direct = os.path.join(self.tmp.name, "direct.gwrt")
        imported = os.path.join(self.tmp.name, "imported.gwrt")
        gwctl("compile", self.doc, self.overlay, "-o", direct, check=True)
        gwctl("compile", out, "-o", imported, check=True)
        r = gwctl("diff", "--exit-code", direct, imported)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no differences", r.stdout)


if __name__ == "__main__":
    unittest.main()
