"""A small inference server that loads a pickled model at start and serves predictions.

It knows nothing about pickleguard: run it under the preload and its pickle.load is guarded.

    LD_PRELOAD=/usr/lib/pickleguard/libpickleguard.so python3 serve.py model.pkl
    curl -s -d '{"features": [1, 2, 3]}' http://127.0.0.1:8000/predict

`--once` starts the server on a free loopback port, sends itself one request, prints the
answer and exits (used by `make demo` and the tests).
"""
import argparse
import json
import pickle
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load_model(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def predict(model, features):
    """A linear model: weights . features + bias."""
    weights = model["weight"]
    if len(features) != len(weights):
        raise ValueError("expected %d features, got %d" % (len(weights), len(features)))
    return sum(w * x for w, x in zip(weights, features)) + model["bias"]


def make_handler(model):
    class PredictHandler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/predict":
                self.send_error(404)
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                features = json.loads(self.rfile.read(length))["features"]
                body = json.dumps({"prediction": predict(model, features)}).encode()
                self.send_response(200)
            except (ValueError, KeyError, TypeError) as exc:
                body = json.dumps({"error": str(exc)}).encode()
                self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return PredictHandler


def ask(port, features):
    request = urllib.request.Request(
        "http://127.0.0.1:%d/predict" % port,
        data=json.dumps({"features": features}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pickled model: a dict with 'weight' and 'bias'")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--once", action="store_true", help="serve one self-request and exit")
    args = parser.parse_args()

    model = load_model(args.model)
    print("loaded model %s (%s)" % (args.model, model.get("name", "unnamed")), flush=True)
    server = ThreadingHTTPServer((args.host, 0 if args.once else args.port), make_handler(model))
    if not args.once:
        print("serving on http://%s:%d/predict" % server.server_address, flush=True)
        server.serve_forever()
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    features = [1.0] * len(model["weight"])
    print("POST /predict %s -> %s" % (json.dumps({"features": features}), ask(server.server_address[1], features)))
    server.shutdown()


if __name__ == "__main__":
    main()
