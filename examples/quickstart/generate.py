#!/usr/bin/env python3
"""Generates the quickstart's CSV files, deterministically (fixed seed, no dependencies).

    python3 examples/quickstart/generate.py

The files are committed; rerunning this script reproduces them byte for byte.
"""
import csv
import datetime
import pathlib
import random

OUT = pathlib.Path(__file__).resolve().parent / "data"
rng = random.Random(20240101)

COUNTRIES = ["FR", "DE", "ES", "IT", "NL", "US", "GB", "JP"]
CATEGORIES = ["books", "games", "garden", "kitchen", "music", "sports"]
FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth"]


def write(name, header, rows):
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


customers = []
for cid in range(1, 501):
    signup = datetime.date(2023, 1, 1) + datetime.timedelta(days=rng.randrange(365))
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    customers.append((cid, name, rng.choice(COUNTRIES), signup.isoformat()))
write("customers.csv", ["customer_id", "name", "country", "signup_date"], customers)

products = []
for pid in range(1, 61):
    category = rng.choice(CATEGORIES)
    price = round(rng.uniform(3, 120), 2)
    products.append((pid, f"{category}-{pid:03d}", category, f"{price:.2f}"))
write("products.csv", ["product_id", "name", "category", "price"], products)

orders = []
start = datetime.date(2024, 1, 1)
for oid in range(1, 4001):
    day = start + datetime.timedelta(days=rng.randrange(91))  # Q1 2024
    status = rng.choices(["paid", "shipped", "cancelled", "refunded"], weights=[60, 30, 7, 3])[0]
    orders.append((oid, rng.randint(1, 500), rng.randint(1, 60), rng.randint(1, 5), day.isoformat(), status))
orders.sort(key=lambda o: (o[4], o[0]))
write("orders.csv", ["order_id", "customer_id", "product_id", "quantity", "order_date", "status"], orders)
print(f"wrote {len(customers)} customers, {len(products)} products, {len(orders)} orders to {OUT}")
