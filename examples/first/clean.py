# The cleaner of README "Your first pipeline", in Nemesyst 2.0.6's form: main(**kwargs) is a generator that yields
# one document per row of the CSV named by --data; nemesyst stores each in --data-collection, stamped.
import csv


def main(**kwargs):
    args = kwargs["args"]
    with open(args["data"][0]) as f:
        for row in csv.DictReader(f):
            yield {"length": float(row["length"]), "kind": row["kind"], "split": row["split"]}
