"""Stage `preprocess`: data/raw/iris.csv -> data/processed/{train,test}.csv (standardised)."""

from pathlib import Path

import numpy as np

raw = np.loadtxt("data/raw/iris.csv", delimiter=",", skiprows=1)
rng = np.random.default_rng(0)
rows = rng.permutation(len(raw))
X, y = raw[rows, :4], raw[rows, 4]
X = (X - X.mean(axis=0)) / X.std(axis=0)
out = Path("data/processed")
out.mkdir(parents=True, exist_ok=True)
split = int(len(X) * 0.7)
header = "sepal_length,sepal_width,petal_length,petal_width,target"
for name, part in (("train", slice(None, split)), ("test", slice(split, None))):
    np.savetxt(out / f"{name}.csv", np.column_stack([X[part], y[part]]), delimiter=",",
               fmt="%.6f", header=header, comments="")
print(f"preprocessed {len(X)} rows")
