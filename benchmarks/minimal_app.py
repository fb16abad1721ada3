"""The smallest Flask page, served the same way as the portal, as a throughput yardstick."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "<!doctype html><title>ok</title><p>ok</p>"
