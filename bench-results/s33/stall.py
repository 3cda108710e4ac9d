import time, sys
dur = float(sys.argv[1]); t0 = time.monotonic(); last = t0; gaps = []
while last - t0 < dur:
    time.sleep(0.001)
    now = time.monotonic()
    if now - last > 0.02: gaps.append((round(now - t0, 2), round((now - last) * 1000)))
    last = now
print(len(gaps), 'gaps > 20 ms in', dur, 's:', gaps[:60])
