"""A small inference server that loads a model at start and serves predictions: a pickled dict
with "weight" and "bias", or a torch file, loaded with torch.load(weights_only=False) as servers
written before torch 2.6 do. It knows nothing about pickleguard: run it under the preload.

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
        return load_torch_model(path) if is_torch_file(f) else pickle.load(f)


# The first bytes of torch's legacy (non-zip) format: a protocol-2 pickle of its magic number.
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


def is_torch_file(f):
    """A torch.save file: a zip archive with a data.pkl record, or the legacy format."""
    head = f.read(len(TORCH_LEGACY_MAGIC))
    f.seek(0)
    if head == TORCH_LEGACY_MAGIC:
        return True
    if not head.startswith(b"PK\x03\x04"):
        return False
    import zipfile

    with zipfile.ZipFile(f) as archive:
        found = any(name.endswith("data.pkl") for name in archive.namelist())
    f.seek(0)
    return found


def load_torch_model(path):
    """A whole nn.Module, or a dict of tensors turned into plain numbers."""
    import torch

    loaded = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(loaded, torch.nn.Module):
        return loaded.eval()
    return {key: value.reshape(-1).tolist() if key == "weight" else
            value.item() if isinstance(value, torch.Tensor) else value
            for key, value in loaded.items()}


def model_name(model):
    if isinstance(model, dict):
        return model.get("name", "unnamed")
    return type(model).__name__


def feature_count(model):
    if isinstance(model, dict):
        return len(model["weight"])
    # An nn.Module: the input width of its first weight matrix.
    return next(p for p in model.parameters() if p.dim() == 2).shape[1]


def predict(model, features):
    """A linear model (weights . features + bias), or the nn.Module's output."""
    if len(features) != feature_count(model):
        raise ValueError("expected %d features, got %d" % (feature_count(model), len(features)))
    if not isinstance(model, dict):
        import torch

        with torch.no_grad():
            output = model(torch.tensor([features], dtype=torch.float32)).reshape(-1).tolist()
        return output[0] if len(output) == 1 else output
    weights = model["weight"]
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
    parser.add_argument("model", help="pickled dict with 'weight' and 'bias', or a torch file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--once", action="store_true", help="serve one self-request and exit")
    args = parser.parse_args()

    model = load_model(args.model)
    print("loaded model %s (%s)" % (args.model, model_name(model)), flush=True)
    server = ThreadingHTTPServer((args.host, 0 if args.once else args.port), make_handler(model))
    if not args.once:
        print("serving on http://%s:%d/predict" % server.server_address, flush=True)
        server.serve_forever()
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    features = [1.0] * feature_count(model)
    print("POST /predict %s -> %s" % (json.dumps({"features": features}), ask(server.server_address[1], features)))
    server.shutdown()


if __name__ == "__main__":
    main()
