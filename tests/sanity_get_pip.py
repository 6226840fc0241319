"""Stand-in for the get-pip.py that ansible-test downloads from ci-files.testing.ansible.com.

That host is outside the package registries this project may use, so tests/sanity.sh puts this
file where ansible-test caches the download. Like get-pip.py it installs the packages named on
its command line, using the pip wheel that ensurepip bundles with Python (then PyPI).
"""

import subprocess
import sys

# ensurepip in a subprocess: in-process it sets PIP_CONFIG_FILE=/dev/null, hiding the machine's pip
# configuration (index, CA bundle) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)
