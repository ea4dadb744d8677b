from emustore.cli import run

run()
