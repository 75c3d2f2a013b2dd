# PyInstaller hook for holidays: it imports its countries by name, reads their gettext catalogues,
# and reads its own version from its package metadata.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hiddenimports = collect_submodules("holidays")
datas = collect_data_files("holidays") + copy_metadata("holidays")
