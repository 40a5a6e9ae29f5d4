"""PowerShell's own cmdlets that scripts sent to the Lync host use, acting on this machine:
Import-Module (the module must exist), Write-Output, Set-Location (runbook's bootstrap for a
step's `cwd`), and the file cmdlets Copy-Item, Remove-Item and Test-Path on real files."""
import glob
import os
import shutil

from ps_language import PSError, Refused, enumerate_value, to_text


def path_error(cmdlet, path, error_id):
    return PSError(
        f"Cannot find path '{path}' because it does not exist.",
        command=cmdlet,
        category=f"ObjectNotFound: ({path}:String) [{cmdlet}], ItemNotFoundException",
        error_id=f"{error_id},Microsoft.PowerShell.Commands.{cmdlet.replace('-', '')}Command",
    )


class Builtins:
    def __init__(self, catalogue, out):
        self.catalogue = catalogue
        self.out = out
        self.imported = []

    def import_module(self, cmdlet, set_name, p, _what):
        if set_name != "Name (Default)":
            raise Refused(f"{cmdlet} of a module that is not named (-{set_name}) is not modelled")
        for name in enumerate_value(p["Name"]):
            module = self.catalogue.module(to_text(name))
            if module is None:
                raise PSError(
                    f"The specified module '{to_text(name)}' was not loaded because no valid module file was "
                    "found in any module directory.",
                    command=cmdlet,
                    category=f"ResourceUnavailable: ({to_text(name)}:String) [Import-Module], FileNotFoundException",
                    error_id="Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
                )
            self.imported.append(module)
        return []

    def write_output(self, _cmdlet, _set, p, _what):
        return enumerate_value(p.get("InputObject"))

    def set_location(self, cmdlet, _set, p, _what):
        path = to_text(p.get("LiteralPath") or p.get("Path"))
        if not os.path.isdir(path):
            raise path_error(cmdlet, path, "PathNotFound")
        os.chdir(path)
        return []

    def copy_item(self, cmdlet, _set, p, what):
        source = to_text(p.get("Path") or p.get("LiteralPath"))
        destination = to_text(p.get("Destination"))
        if not os.path.exists(source):
            raise path_error(cmdlet, source, "PathNotFound")
        if what:
            self.out.write(f'What if: Performing the operation "Copy File" on target "Item: {source} '
                           f'Destination: {destination}".\n')
            return []
        shutil.copyfile(source, destination)
        return []

    def remove_item(self, cmdlet, _set, p, what):
        pattern = to_text(p.get("Path") or p.get("LiteralPath"))
        found = glob.glob(pattern) if "Path" in p else [pattern] if os.path.exists(pattern) else []
        if not found and not glob.has_magic(pattern):
            raise path_error(cmdlet, pattern, "PathNotFound")
        for target in found:
            if what:
                self.out.write(f'What if: Performing the operation "Remove File" on target "{target}".\n')
            else:
                os.remove(target)
        return []

    def test_path(self, _cmdlet, _set, p, _what):
        paths = enumerate_value(p.get("Path") if "Path" in p else p.get("LiteralPath"))
        return [bool(path) and os.path.exists(to_text(path)) for path in paths]

    def handlers(self):
        return {
            "Import-Module": self.import_module,
            "Write-Output": self.write_output,
            "Set-Location": self.set_location,
            "Copy-Item": self.copy_item,
            "Remove-Item": self.remove_item,
            "Test-Path": self.test_path,
        }
