import json, sys, math
for f in sys.argv[1:]:
    r = json.load(open(f + '/results.json'))
    eps = r['episodes']
    pols = sorted({e['policy'] for e in eps})
    for p in pols:
        E = [e for e in eps if e['policy'] == p]
        n = len(E); k = sum(e['success'] for e in E)
        fw = sum(e.get('forwards', 0) for e in E); ro = sum(e.get('rotations', 0) for e in E)
        spl = sum(e.get('spl', 0) or 0 for e in E) / max(n, 1)
        per = {}
        for e in E:
            per.setdefault(e['world'], [0, 0]); per[e['world']][0] += e['success']; per[e['world']][1] += 1
        print(f"{f.split('/')[-1]:14s} {p:12s} {k}/{n} SR {k/n:.2f}+-{math.sqrt(k/n*(1-k/n)/n):.2f} SPL {spl:.2f} rot/fwd {ro/max(fw,1):.2f}  " + " ".join(f"{w}:{a}/{b}" for w, (a, b) in per.items()) + (" PARTIAL" if r.get('partial') else ""))
