import torch.nn.functional as F


def run(x, y, w, pw):
    return F.binary_cross_entropy_with_logits(x, y, weight=w, reduction='sum')
