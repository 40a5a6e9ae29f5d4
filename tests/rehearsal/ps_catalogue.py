"""Which cmdlets exist and how their parameters bind, read from Microsoft's reference
(`powershell-cmdlets.json`), for the product the stand-in plays: Lync Server 2013 on Windows
PowerShell 5.1. Nothing here lists a cmdlet or a parameter by hand.

A cmdlet whose page says it applies to other products only does not exist; a parameter the
page marks as not applicable to Lync Server 2013 is not a parameter; where allowed values
differ per product, Lync Server 2013's apply. Binding follows PowerShell's binder: exact
names, then aliases, then unambiguous prefixes; switches take no value unless written
`-Switch:$value`; positional arguments fill the parameter set's positions in order; the
parameter set is the one holding every named parameter (the one whose mandatory parameters
are all given, when several do); ValidateSet values are checked; and a mandatory parameter
left out is an error, since `-NonInteractive` cannot prompt for it.
"""
import json

from ps_language import PSError, to_text

PRODUCT = "Lync Server 2013"
# The module Lync Server 2013 installs (the reference names it by its later name).
PRODUCT_MODULE = "Lync"
REFERENCE_MODULE = "SkypeForBusiness"
COMMON_SWITCHES = {"Verbose", "Debug", "WhatIf", "Confirm"}


def binding_error(cmdlet, message, kind, extent, category="InvalidArgument", exception="ParameterBindingException"):
    return PSError(
        message,
        command=cmdlet,
        category=f"{category}: (:) [{cmdlet}], {exception}",
        error_id=f"{kind},{cmdlet}",
        extent=extent,
    )


class Cmdlet:
    """One cmdlet as Lync Server 2013's shell has it."""

    def __init__(self, name, entry, catalogue):
        self.name = name
        self.module = entry.get("module", "")
        gone = set(entry.get("parameters_not_applicable_to_lync_2013", []))
        self.sets = {
            set_name: [p for p in params if p not in gone]
            for set_name, params in entry["parameter_sets"].items()
        }
        self.mandatory = {s: [p for p in entry.get("mandatory", {}).get(s, []) if p not in gone] for s in self.sets}
        self.positional = {s: [p for p in entry.get("positional", {}).get(s, []) if p not in gone] for s in self.sets}
        self.own = sorted({p for params in self.sets.values() for p in params})
        # WhatIf and Confirm exist only where the cmdlet lists them (ShouldProcess).
        self.names = self.own + [c for c in catalogue.common if c not in catalogue.risk and c not in self.own]
        self.switches = set(entry.get("switches", [])) | (COMMON_SWITCHES & set(self.names))
        self.aliases = {a.lower(): p for p, al in entry.get("aliases", {}).items() for a in al if p in self.names}
        self.aliases.update(
            {a.lower(): p for p, al in catalogue.common_aliases.items() for a in al if p in self.names}
        )
        values = dict(entry.get("values") or {})
        for parameter, per_product in (entry.get("values_by_product") or {}).items():
            if PRODUCT in per_product:
                values[parameter] = per_product[PRODUCT]
        self.values = {**catalogue.common_values, **values}

    def supports(self, parameter):
        return parameter in self.names

    def resolve(self, raw, extent):
        low = raw.lower()
        exact = [n for n in self.names if n.lower() == low]
        if exact:
            return exact[0]
        if low in self.aliases:
            return self.aliases[low]
        matches = [n for n in self.names if n.lower().startswith(low)]
        if not matches:
            raise binding_error(self.name, f"A parameter cannot be found that matches parameter name '{raw}'.",
                                "NamedParameterNotFound", extent)
        if len(matches) > 1:
            raise binding_error(
                self.name,
                f"Parameter cannot be processed because the parameter name '{raw}' is ambiguous. "
                f"Possible matches include: {' '.join('-' + m for m in matches)}.",
                "AmbiguousParameter", extent)
        return matches[0]

    def check_value(self, parameter, value, extent):
        allowed = self.values.get(parameter)
        if not allowed:
            return value
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            text = to_text(item)
            canonical = [a for a in allowed if a.lower() == text.lower()]
            if not canonical:
                raise binding_error(
                    self.name,
                    f"Cannot validate argument on parameter '{parameter}'. The argument \"{text}\" does not "
                    f"belong to the set \"{','.join(allowed)}\" specified by the ValidateSet attribute. Supply "
                    "an argument that is in the set and then try the command again.",
                    "ParameterArgumentValidationError", extent,
                    category="InvalidData", exception="ParameterBindingValidationException")
            out.append(canonical[0])
        return out if isinstance(value, list) else out[0]

    def bind(self, args, whole):
        """args: (name or None, value, extent, colon) as written -> (parameter set, {parameter:
        value}). `whole` is the command's extent."""
        bound, positional = {}, []
        i = 0
        while i < len(args):
            raw, value, extent, colon = args[i]
            i += 1
            if raw is None:
                positional.append((value, extent))
                continue
            parameter = self.resolve(raw, extent)
            if parameter in bound:
                raise binding_error(
                    self.name,
                    f"Cannot bind parameter because parameter '{parameter}' is specified more than once. To "
                    "provide multiple values to parameters that can accept multiple values, use the array "
                    'syntax. For example, "-parameter value1,value2,value3".',
                    "ParameterAlreadyBound", extent)
            if parameter in self.switches:
                bound[parameter] = bool(value) if colon else True
                continue
            if not colon:
                if i >= len(args) or args[i][0] is not None:
                    raise binding_error(
                        self.name,
                        f"Missing an argument for parameter '{parameter}'. Specify a parameter of type "
                        "'System.String' and try again.",
                        "MissingArgument", extent)
                value, extent = args[i][1], args[i][2]
                i += 1
            bound[parameter] = self.check_value(parameter, value, extent)
        named = {p for p in bound if p in self.own}
        candidates = [s for s, params in self.sets.items() if named <= set(params)]
        if not candidates:
            raise binding_error(self.name, "Parameter set cannot be resolved using the specified named parameters.",
                                "AmbiguousParameterSet", whole)
        candidates.sort(key=lambda s: "(Default)" not in s)
        best = None
        for set_name in candidates:
            free = [p for p in self.positional[set_name] if p not in bound]
            if len(positional) > len(free):
                continue
            trial = dict(bound)
            for (value, extent), parameter in zip(positional, free):
                trial[parameter] = self.check_value(parameter, value, extent)
            missing = [p for p in self.mandatory[set_name] if p not in trial]
            if not missing:
                return set_name, trial
            if best is None:
                best = (set_name, missing)
        if best is None:
            free = [p for p in self.positional[candidates[0]] if p not in bound]
            value, extent = positional[len(free)]
            raise binding_error(
                self.name, f"A positional parameter cannot be found that accepts argument '{to_text(value)}'.",
                "PositionalParameterNotFound", extent)
        raise binding_error(
            self.name,
            f"Cannot process command because of one or more missing mandatory parameters: {' '.join(best[1])}.",
            "MissingMandatoryParameter", whole)


class Catalogue:
    def __init__(self, path):
        with open(path) as f:
            data = json.load(f)
        self.common = data["common_parameters"]
        self.common_aliases = data["common_parameter_aliases"]
        self.common_values = data["common_parameter_values"]
        self.risk = set(data["risk_mitigation_parameters"]["names"])
        self.entries = {}
        for name, entry in data["cmdlets"].items():
            applicable = [p for p in entry.get("applicable", []) if p]
            if applicable and PRODUCT not in applicable:
                continue  # another product's cmdlet: this shell does not have it
            self.entries[name.lower()] = (name, entry)
        self.cache = {}
        # Importable by name: the product's module and PowerShell's own.
        self.modules = {PRODUCT_MODULE.lower(): PRODUCT_MODULE}
        for _, entry in self.entries.values():
            module = entry.get("module", "")
            if module and module != REFERENCE_MODULE:
                self.modules[module.lower()] = module

    def cmdlet(self, name, extent):
        found = self.entries.get(name.lower())
        if found is None:
            raise PSError(
                f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                "operable program. Check the spelling of the name, or if a path was included, verify that "
                "the path is correct and try again.",
                command=name,
                category=f"ObjectNotFound: ({name}:String) [], CommandNotFoundException",
                error_id="CommandNotFoundException",
                extent=extent,
            )
        canonical, entry = found
        if canonical not in self.cache:
            self.cache[canonical] = Cmdlet(canonical, entry, self)
        return self.cache[canonical]

    def module(self, name):
        return self.modules.get(name.lower())
