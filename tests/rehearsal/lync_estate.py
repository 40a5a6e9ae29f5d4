"""The Lync side of the rehearsal estate: what the Lync Server 2013 cmdlets the runbooks use
read and change, kept in the JSON file named by LYNC_STATE (its shape: tests/rehearsal/README.md).

Modelled: each Persistent Chat pool's state (Normal / FailedOver), its servers and which of
them are active; the published topology's SQL stores and the mirror each defines; the mirrors
installed (written to `mirrors`, which the SQL side of the estate reads) and the databases
each mirror server holds; the Central Management Store's master and whether it can be
written; the outcome of a test message. A parameter set or a value the model does not cover
is refused as not modelled (exit 2), never answered with a guess.

Identities are checked as the cmdlets check them, before `-WhatIf` is honoured: a pool that is
not in the state, a server that is not in the pool, a store the topology does not define are
errors. The wording of these errors is the stand-in's (Microsoft does not document it); the
wording of PowerShell's own errors (binding, unknown commands) is PowerShell's.
"""
import fnmatch
import json
import os

from ps_language import Hashtable, PSError, PSObject, Refused, to_text

MIRRORED_TYPES = ("PersistentChat", "PersistentChatCompliance")


def lync_error(cmdlet, message, kind, target=""):
    return PSError(
        message,
        command=cmdlet,
        category=f"InvalidOperation: ({target}:String) [{cmdlet}], InvalidOperationException",
        error_id=f"{kind},{cmdlet}",
    )


def what_if(out, operation, target):
    out.write(f'What if: Performing the operation "{operation}" on target "{target}".\n')


def same(a, b):
    return to_text(a).lower() == to_text(b).lower()


class LyncEstate:
    def __init__(self, path, hint_path, out):
        self.path = path
        self.hint_path = hint_path
        self.out = out
        self.loaded = None
        self.changed = False

    # ---- the state file ----
    @property
    def state(self):
        if self.loaded is None:
            if not self.path:
                raise Refused("LYNC_STATE is not set: the Lync cmdlets have no estate to act on")
            try:
                with open(self.path) as f:
                    self.loaded = json.load(f)
            except (OSError, ValueError) as e:
                raise Refused(f"cannot read the Lync state {self.path}: {e}")
            if not isinstance(self.loaded.get("pools"), dict):
                raise Refused(f"the Lync state {self.path} has no `pools` (see tests/rehearsal/README.md)")
        return self.loaded

    def save(self):
        if not self.changed:
            return
        temporary = self.path + ".new"
        with open(temporary, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(temporary, self.path)

    def pool(self, cmdlet, identity, prefix):
        """The pool an identity `prefix:<pool fqdn>` names."""
        text = to_text(identity)
        if text.lower().startswith(prefix.lower() + ":"):
            fqdn = text[len(prefix) + 1:]
            for name, pool in self.state["pools"].items():
                if same(name, fqdn):
                    return name, pool
        raise lync_error(cmdlet, f'Cannot find a Persistent Chat pool with the identity "{text}": '
                         f'the topology has {", ".join(prefix + ":" + p for p in self.state["pools"]) or "none"}.',
                         "IdentityNotFound", text)

    def writable(self, cmdlet):
        cms = self.state.get("cms", {})
        if cms.get("writable", True) is False:
            raise lync_error(cmdlet, "Cannot write to the Central Management Store: its master "
                             f'"{cms.get("active_master", "")}" cannot be reached. Move it with '
                             "Invoke-CsManagementServerFailover first.", "CmsNotWritable")

    # ---- pool state ----
    def get_chat_state(self, cmdlet, _set, p, _what_if):
        pools = self.state["pools"]
        if "Identity" in p:
            name, pool = self.pool(cmdlet, p["Identity"], "service")
            chosen = [(name, pool)]
        else:
            pattern = to_text(p.get("Filter") or "*")
            chosen = [(n, q) for n, q in pools.items() if fnmatch.fnmatch(("service:" + n).lower(), pattern.lower())]
        return [PSObject(Identity=f"service:{name}", PoolState=pool["state"]) for name, pool in chosen]

    def set_chat_state(self, cmdlet, set_name, p, what):
        if set_name != "Identity" or "Identity" not in p:
            raise Refused(f"{cmdlet} without -Identity is not modelled")
        name, pool = self.pool(cmdlet, p["Identity"], "service")
        if "PoolState" not in p:
            return []
        if what:
            what_if(self.out, cmdlet, f"service:{name}")
            return []
        self.writable(cmdlet)
        pool["state"] = p["PoolState"]
        self.changed = True
        return []

    # ---- active servers ----
    def set_active_servers(self, cmdlet, set_name, p, what):
        if set_name != "Explicit" or "Identity" not in p:
            raise Refused(f"{cmdlet} -Swap (or without -Identity) is not modelled")
        name, pool = self.pool(cmdlet, p["Identity"], "PersistentChatServer")
        servers = pool.get("servers", [])
        value = p["ActiveServers"]
        active = list(pool.get("active_servers", []))
        if value is None:
            changes = [("Replace", [])]
        elif isinstance(value, Hashtable):
            changes = []
            for key, items in value.items():
                kind = [k for k in ("Add", "Remove", "Replace") if same(k, key)]
                if not kind:
                    raise PSError(
                        f"Cannot bind parameter 'ActiveServers'. Cannot convert the \"{key}\" key of the "
                        "hashtable to a list modifier: the keys are Add, Remove and Replace.",
                        command=cmdlet,
                        category=f"InvalidArgument: (:) [{cmdlet}], ParameterBindingException",
                        error_id=f"CannotConvertArgumentNoMessage,{cmdlet}")
                changes.append((kind[0], [to_text(i) for i in (items if isinstance(items, list) else [items])]))
        else:
            changes = [("Replace", [to_text(i) for i in (value if isinstance(value, list) else [value])])]
        for _, items in changes:
            for server in items:
                if not any(same(server, s) for s in servers):
                    raise lync_error(cmdlet, f'"{server}" is not a Persistent Chat Server of pool "{name}" '
                                     f'(its servers: {", ".join(servers)}).', "ServerNotInPool", server)
        for kind, items in changes:
            if kind == "Replace":
                active = list(items)
            elif kind == "Add":
                active += [s for s in items if not any(same(s, a) for a in active)]
            else:
                active = [a for a in active if not any(same(s, a) for s in items)]
        if what:
            what_if(self.out, cmdlet, f"PersistentChatServer:{name}")
            return []
        self.writable(cmdlet)
        pool["active_servers"] = active
        self.changed = True
        return []

    def get_service(self, cmdlet, set_name, p, _what):
        if set_name == "Identity" and "Identity" in p:
            name, pool = self.pool(cmdlet, p["Identity"], "PersistentChatServer")
            chosen = [(name, pool)]
        elif set_name == "PersistentChatServer":
            fqdn = p.get("PoolFqdn")
            chosen = [(n, q) for n, q in self.state["pools"].items() if fqdn is None or same(n, fqdn)]
        else:
            raise Refused(f"{cmdlet} is modelled for -PersistentChatServer only")
        return [
            PSObject(Identity=f"PersistentChatServer:{name}", PoolFqdn=name,
                     ActiveServers=list(pool.get("active_servers", [])))
            for name, pool in chosen
        ]

    # ---- Central Management Store ----
    def replication_status(self, cmdlet, _set, p, _what):
        if not p.get("CentralManagementStoreStatus"):
            raise Refused(f"{cmdlet} is modelled with -CentralManagementStoreStatus only")
        master = self.state.get("cms", {}).get("active_master", "")
        return [PSObject(ActiveMasterFqdn=master, ActiveReplicatorFqdn=master)]

    # ---- test message ----
    def test_message(self, cmdlet, _set, p, _what):
        if p.get("Setup"):
            raise Refused(f"{cmdlet} -Setup is not modelled")
        target = to_text(p.get("TargetFqdn"))
        pools = [(n, q) for n, q in self.state["pools"].items() if same(n, target)]
        error = None
        if not pools:
            error = f'"{target}" is not a Persistent Chat pool.'
        else:
            name, pool = pools[0]
            if not pool.get("active_servers"):
                error = f'Pool "{name}" has no active Persistent Chat Server.'
            else:
                error = self.database_offline(pool)
        return [PSObject(TargetFqdn=target, Result="Failure" if error else "Success",
                         Latency="00:00:00" if error else "00:00:01", Error=error)]

    def database_offline(self, pool):
        """Why the databases the pool's state points at are not usable, read from the SQL side's
        hint file when there is one (SQL_STATE_HINT): {"<sql fqdn>": {"<database>": "ONLINE"}}."""
        if not self.hint_path or not os.path.exists(self.hint_path):
            return None
        store = pool.get("stores", {}).get(pool["state"])
        if not store:
            return None
        with open(self.hint_path) as f:
            hint = json.load(f)
        database = pool.get("database", "mgc")
        state = next((dbs.get(database) for sql, dbs in hint.items() if same(sql, store)), None)
        if state != "ONLINE":
            return f'The database {database} on "{store}" is {state or "missing"}.'
        return None

    # ---- mirrors ----
    def store(self, cmdlet, p):
        sql = to_text(p["SqlServerFqdn"])
        key = sql + ("\\" + to_text(p["SqlInstanceName"]) if p.get("SqlInstanceName") else "")
        database_type = p["DatabaseType"]
        if database_type not in MIRRORED_TYPES:
            raise Refused(f"{cmdlet} -DatabaseType {database_type} is not modelled")
        stores = self.state.get("topology", {}).get("stores", {})
        found = [(k, v) for k, v in stores.items() if same(k, key)]
        if not found:
            raise lync_error(cmdlet, f'The published topology defines no {database_type} store on "{key}".',
                             "StoreNotInTopology", key)
        name, store = found[0]
        if database_type not in store.get("databases", list(MIRRORED_TYPES)):
            raise lync_error(cmdlet, f'The store "{name}" holds no {database_type} database in the published topology.',
                             "DatabaseNotInStore", key)
        return name, store, database_type

    def install_mirror(self, cmdlet, set_name, p, what):
        if set_name != "ByDatabase":
            raise Refused(f"{cmdlet} -ConfiguredDatabases is not modelled")
        name, store, database_type = self.store(cmdlet, p)
        mirror = store.get("mirror")
        if not mirror:
            raise lync_error(cmdlet, f'The published topology defines no mirror for the store "{name}": '
                             "define it and publish the topology first.", "NoMirrorInTopology", name)
        holds = self.state.setdefault("mirror_holds", {})
        held = next((v for k, v in holds.items() if same(k, mirror)), [])
        if database_type in held and not p.get("DropExistingDatabasesOnMirror"):
            raise lync_error(cmdlet, f'The mirror "{mirror}" already holds the {database_type} database: '
                             "use -DropExistingDatabasesOnMirror to replace it.", "DatabaseExistsOnMirror", mirror)
        if what:
            what_if(self.out, cmdlet, f"{database_type} on {name}, mirrored to {mirror}")
            return []
        self.writable(cmdlet)
        mirrors = [m for m in self.state.get("mirrors", [])
                   if not (m["database_type"] == database_type and same(m["sql"], name))]
        mirrors.append({"database_type": database_type, "sql": name, "mirror": mirror,
                        "file_share": to_text(p["FileShare"])})
        self.state["mirrors"] = mirrors
        key = next((k for k in holds if same(k, mirror)), mirror)
        holds[key] = sorted(set(holds.get(key, [])) | {database_type})
        self.changed = True
        return []

    def uninstall_mirror(self, cmdlet, _set, p, what):
        name, store, database_type = self.store(cmdlet, p)
        mirrors = self.state.get("mirrors", [])
        installed = [m for m in mirrors if m["database_type"] == database_type and same(m["sql"], name)]
        if not installed:
            raise lync_error(cmdlet, f'No mirror of the {database_type} database on "{name}" is installed.',
                             "MirrorNotInstalled", name)
        if what:
            what_if(self.out, cmdlet, f"{database_type} on {name}")
            return []
        self.writable(cmdlet)
        self.state["mirrors"] = [m for m in mirrors if m not in installed]
        if p.get("DropExistingDatabasesOnMirror"):
            holds = self.state.setdefault("mirror_holds", {})
            for m in installed:
                for key in [k for k in holds if same(k, m["mirror"])]:
                    holds[key] = [t for t in holds[key] if t != database_type]
        self.changed = True
        return []

    def handlers(self):
        return {
            "Get-CsPersistentChatState": self.get_chat_state,
            "Set-CsPersistentChatState": self.set_chat_state,
            "Set-CsPersistentChatActiveServer": self.set_active_servers,
            "Get-CsService": self.get_service,
            "Get-CsManagementStoreReplicationStatus": self.replication_status,
            "Test-CsPersistentChatMessage": self.test_message,
            "Install-CsMirrorDatabase": self.install_mirror,
            "Uninstall-CsMirrorDatabase": self.uninstall_mirror,
        }
