# PyInstaller hook for prophet (it ships none): the modules it imports by name, and its Stan model.
# The compiled model executable, a CmdStan folder that only has to pass cmdstanpy's check (the
# folder and its makefile), and libtbb where the model's RUNPATH ($ORIGIN/../../prophet.libs)
# looks for it.
from pathlib import Path

from PyInstaller.utils.hooks import copy_metadata, get_package_paths

hiddenimports = ["prophet.forecaster", "prophet.models", "cmdstanpy", "stanio"]

_, _prophet_dir = get_package_paths("prophet")
_prophet = Path(_prophet_dir)
_cmdstan = next((_prophet / "stan_model").glob("cmdstan-*"))
datas = [
    (str(_prophet / "stan_model" / "prophet_model.bin"), "prophet/stan_model"),
    (str(_cmdstan / "makefile"), f"prophet/stan_model/{_cmdstan.name}"),
]
datas += [(str(p), "prophet.libs") for p in (_prophet.parent / "prophet.libs").glob("*.so*")]
datas += copy_metadata("prophet")
