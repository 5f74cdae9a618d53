"""Slow, obvious reference implementations of the evaluation metrics: each official algorithm as plain Python loops.

Rows are tuples: TAD ground truth `(vid, label, start, end)`, TAD predictions `(vid, label, start, end, score)`;
MR ground truth `{qid: [(start, end), ...]}`, MR predictions `{qid: [(start, end, score), ...]}`.
Every sort by score uses Python's `sorted`, which is stable (ties keep file order).
"""
import math


def iou_official(p, g):
    "tIoU of one pair as ActivityNet's segment_iou computes it: 0/0 gives NaN."
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = (p[1] - p[0]) + (g[1] - g[0]) - inter
    return math.nan if union == 0 else inter / union


def iou_compare(p, g):
    "tIoU for the recall metrics, where NaN fails every comparison: NaN -> 0."
    v = iou_official(p, g)
    return 0.0 if math.isnan(v) else v


def interpolated_prec_rec(prec, rec):
    "VOC interpolated AP, as in the ActivityNet code."
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def ap_detection(gt, preds, thresholds):
    "AP per threshold of one class: gt [(vid, s, e)], preds [(vid, s, e, score)] (ActivityNet greedy matching)."
    ap = [0.0] * len(thresholds)
    if not preds or not gt:
        return ap
    order = sorted(range(len(preds)), key=lambda i: -preds[i][3])
    by_vid = {}
    for j, g in enumerate(gt):
        by_vid.setdefault(g[0], []).append(j)
    locked = [[False] * len(gt) for _ in thresholds]
    tp = [[0] * len(preds) for _ in thresholds]
    fp = [[0] * len(preds) for _ in thresholds]
    for n, i in enumerate(order):
        vid, s, e, _ = preds[i]
        js = by_vid.get(vid, [])
        if not js:
            for t in range(len(thresholds)):
                fp[t][n] = 1
            continue
        ious = [iou_official((s, e), (gt[j][1], gt[j][2])) for j in js]
        # decreasing tIoU, NaN first (as argsort()[::-1] puts it), equal tIoU in file order
        cand = sorted(range(len(js)), key=lambda k: (0, 0.0) if math.isnan(ious[k]) else (1, -ious[k]))
        for t, thr in enumerate(thresholds):
            for k in cand:
                if ious[k] < thr:  # False for NaN
                    fp[t][n] = 1
                    break
                if locked[t][js[k]]:
                    continue
                tp[t][n] = 1
                locked[t][js[k]] = True
                break
            if not tp[t][n] and not fp[t][n]:
                fp[t][n] = 1
    for t in range(len(thresholds)):
        ctp = cfp = 0
        prec, rec = [], []
        for n in range(len(preds)):
            ctp += tp[t][n]
            cfp += fp[t][n]
            prec.append(ctp / (ctp + cfp))
            rec.append(ctp / len(gt))
        ap[t] = interpolated_prec_rec(prec, rec)
    return ap


def tad_ap(gt_rows, pred_rows, thresholds):
    "AP [T][C] over the sorted GT classes, and the classes."
    classes = sorted({r[1] for r in gt_rows})
    out = [[0.0] * len(classes) for _ in thresholds]
    for c, label in enumerate(classes):
        gt = [(r[0], r[2], r[3]) for r in gt_rows if r[1] == label]
        preds = [(r[0], r[2], r[3], r[4]) for r in pred_rows if r[1] == label]
        for t, v in enumerate(ap_detection(gt, preds, thresholds)):
            out[t][c] = v
    return out, classes


def tad_map(gt_rows, pred_rows, thresholds):
    "mAP per threshold (mean over GT classes)."
    ap, classes = tad_ap(gt_rows, pred_rows, thresholds)
    return [sum(row) / len(classes) for row in ap]


def topk_recall(gt_rows, pred_rows, ks, thresholds):
    "Ego4D MQ recall [K][T]: top k*n predictions of the video and class, tIoU > t, averaged over GT instances."
    groups = {}
    for r in gt_rows:
        groups.setdefault((r[0], r[1]), []).append((r[2], r[3]))
    hits = [[0] * len(thresholds) for _ in ks]
    total = 0
    for (vid, label), gts in groups.items():
        preds = [r for r in pred_rows if r[0] == vid and r[1] == label]
        preds = sorted(preds, key=lambda r: -r[4])
        total += len(gts)
        for a, k in enumerate(ks):
            top = preds[:k * len(gts)]
            for b, thr in enumerate(thresholds):
                for g in gts:
                    if any(iou_compare((p[2], p[3]), g) > thr for p in top):
                        hits[a][b] += 1
    return [[h / total for h in row] for row in hits]


def thumos_ap(conf, labels):
    "THUMOSeventclspr: mean precision at each positive, stable descending sort."
    order = sorted(range(len(conf)), key=lambda i: -conf[i])
    npos = sum(labels)
    tp = fp = 0
    ap = 0.0
    for i in order:
        if labels[i]:
            tp += 1
            ap += tp / (tp + fp)
        else:
            fp += 1
    return ap / npos if npos else math.nan


def charades_map(gt_rows, durations, pred_rows, n_frames=25):
    "Charades_v1_localize mAP over the GT classes with positive frames; durations lists the GT videos in file order."
    classes = sorted({r[1] for r in gt_rows})
    gts, preds = {}, {}
    for r in gt_rows:
        gts.setdefault((r[1], r[0]), []).append(r)
    for r in pred_rows:
        preds.setdefault((r[1], r[0]), []).append(r)
    aps = []
    for label in classes:
        conf, labels = [], []
        for vid, dur in durations.items():
            vg, vp = gts.get((label, vid), []), preds.get((label, vid), [])
            for j in range(n_frames):
                t = (j / n_frames) * dur
                labels.append(int(any(r[2] <= t <= r[3] for r in vg)))
                score = 0.0
                for r in vp:
                    if r[2] <= t <= r[3]:
                        score = max(score, r[4])
                conf.append(score)
        ap = thumos_ap(conf, labels)
        if not math.isnan(ap):
            aps.append(ap)
    return sum(aps) / len(aps)


def mr_metrics(gt, pred, ks, thresholds, strict=False, map_thresholds=None, top=10):
    "R{k}@{m} [K][T], mIoU and Moment-DETR mAP, each averaged over all GT queries."
    map_thresholds = map_thresholds or [round(0.5 + 0.05 * i, 2) for i in range(10)]
    recall = [[0] * len(thresholds) for _ in ks]
    miou = mean_ap = 0.0
    for q, gws in gt.items():
        preds = sorted(pred.get(q, []), key=lambda w: -w[2])
        best = [max([iou_compare(p[:2], g) for g in gws], default=0.0) for p in preds]
        for a, k in enumerate(ks):
            for b, m in enumerate(thresholds):
                if any((v > m) if strict else (v >= m) for v in best[:k]):
                    recall[a][b] += 1
        miou += best[0] if best else 0.0
        ap = ap_detection([(q, g[0], g[1]) for g in gws], [(q, p[0], p[1], p[2]) for p in preds[:top]], map_thresholds)
        mean_ap += sum(ap) / len(ap)
    n = len(gt)
    return [[r / n for r in row] for row in recall], miou / n, mean_ap / n
