"""Consistent hashing as a user of `balance = "hash"` sees it: every worker sends a key to the
same endpoint, and a reload that removes, reorders or adds endpoints moves only the keys it
must."""
import unittest

from harness import Conn, GatewayTest, control, gwctl

SPEC = """
version = 1
[upstreams.sticky]
endpoints = [{endpoints}]
balance = "hash"
hash_on = "header:x-user"
[[routes]]
name = "sticky"
prefix = "/"
upstream = "sticky"
"""

USERS = [f"user-{i}" for i in range(80)]


class HashAcrossReloads(GatewayTest):
    BACKENDS = ("a", "b", "c", "d")
    WORKERS = 2

    @classmethod
    def spec(cls, names):
        return SPEC.format(endpoints=", ".join(f'"{cls.backends[n].address}"' for n in names))

    @classmethod
    def start_gateway(cls):
        cls.SPEC = cls.spec("abcd").replace("{", "{{").replace("}", "}}")
        return super().start_gateway()

    def owners(self):
        """The backend each user lands on, asked twice on separate connections (so, with two
        workers, usually from both): the answers must agree."""
        out = {}
        for user in USERS:
            seen = set()
            for _ in range(2):
                with Conn(self.gw.port) as c:
                    seen.add(c.request(path="/echo", headers={"x-user": user}).json()["backend"])
            self.assertEqual(len(seen), 1, f"{user} went to {seen}")
            out[user] = seen.pop()
        return out

    def reload(self, names, file):
        path = self.write(file, self.spec(names))
        r = gwctl("reload", path, socket_path=self.gw.control)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(control(self.gw.control, "show upstreams")["result"]["upstreams"][0]
                         ["endpoints"].__len__(), len(names))

    def test_removing_reordering_and_adding_endpoints_moves_only_their_keys(self):
        before = self.owners()
        self.assertEqual(set(before.values()), set("abcd"))
        # Without c, and listed in another order.
        self.reload("dba", "without-c.toml")
        after = self.owners()
        for user, owner in before.items():
            if owner == "c":
                self.assertNotEqual(after[user], "c")
            else:
                self.assertEqual(after[user], owner, f"{user} moved from {owner} to {after[user]}")
        # c comes back: every key returns to where it was.
        self.reload("cadb", "with-c.toml")
        self.assertEqual(self.owners(), before)


if __name__ == "__main__":
    unittest.main()
