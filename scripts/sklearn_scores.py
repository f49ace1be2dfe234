"""Scores a metrics CSV with scikit-learn's IsolationForest (for the agreement test and
the benchmark). Usage: sklearn_scores.py CSV N_ESTIMATORS MAX_SAMPLES SEED
Prints JSON {"scores": [...], "fit_s": ..., "score_s": ...}; scores are -score_samples,
so higher is more anomalous, as in the TypeScript detector."""
import csv
import json
import sys
import time

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

path, n_estimators, max_samples, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
x = np.array([[float(r["cpu_usage"]), float(r["memory_usage"]), float(r["network_load"])] for r in rows])
x = StandardScaler().fit_transform(x)
t0 = time.perf_counter()
model = IsolationForest(n_estimators=n_estimators, max_samples=min(max_samples, len(x)), random_state=seed).fit(x)
t1 = time.perf_counter()
scores = -model.score_samples(x)
t2 = time.perf_counter()
print(json.dumps({"scores": scores.tolist(), "fit_s": t1 - t0, "score_s": t2 - t1}))
