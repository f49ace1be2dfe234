"""Times scikit-learn's IsolationForest for the benchmark. Usage: sklearn_bench.py CSV
CSV holds 100,000 rows of 3 standardised features (no header). Prints JSON timings."""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import IsolationForest

x = np.loadtxt(sys.argv[1], delimiter=",")
out = {}
for n in (1000, 100000):
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(x[:n])
        best = min(best, time.perf_counter() - t0)
    out[f"fit_{n}_s"] = best
model = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(x)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    model.score_samples(x)
    best = min(best, time.perf_counter() - t0)
out["score_100000_s"] = best
t0 = time.perf_counter()
for i in range(200):
    model.predict(x[i : i + 1])
out["predict_1_s"] = (time.perf_counter() - t0) / 200
print(json.dumps(out))
