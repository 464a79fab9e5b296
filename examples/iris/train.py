"""Stage `train`: fits a model with params.yaml's `train` section, tracks the run in Cairn,
writes models/classifier.pkl and metrics.json, and registers the model version."""

import json
import pickle
import warnings
from pathlib import Path

import pandas as pd
import yaml
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score

import cairn

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
train = pd.read_csv("data/processed/train.csv")
test = pd.read_csv("data/processed/test.csv")
features = [c for c in train.columns if c != "target"]

cairn.set_experiment("iris")
with cairn.start_run() as run:
    cairn.log_params({"learning_rate": params["learning_rate"], "epochs": params["epochs"]})
    model = SGDClassifier(loss="log_loss", learning_rate="constant",
                          eta0=params["learning_rate"], max_iter=params["epochs"], random_state=0)
    with warnings.catch_warnings():  # few epochs on purpose: the params visibly matter
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train[features], train["target"])
    curve = []  # accuracy on growing slices of the test set, logged step by step
    for step in range(1, 6):
        part = test.iloc[: len(test) * step // 5]
        curve.append(float(accuracy_score(part["target"], model.predict(part[features]))))
        cairn.log_metric("accuracy_curve", curve[-1], step=step)
    predicted = model.predict(test[features])
    metrics = {"accuracy": round(float(accuracy_score(test["target"], predicted)), 4),
               "f1": round(float(f1_score(test["target"], predicted, average="macro")), 4)}
    cairn.log_metrics(metrics)
    cairn.sklearn.log_model(model, "model", input_example=test[features].head(5),
                            registered_model_name="iris-classifier")

Path("models").mkdir(exist_ok=True)
Path("models/classifier.pkl").write_bytes(pickle.dumps(model))
Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
Path("learning_curve.csv").write_text(
    "step,accuracy\n" + "".join(f"{i},{a:.4f}\n" for i, a in enumerate(curve, 1)))
print(f"run {run.info.run_id}: {metrics}")
