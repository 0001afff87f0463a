import torch.nn as nn
from torch.nn.functional import binary_cross_entropy as bce


class Head:
    loss = staticmethod(lambda q, y, w: bce(q, y, w, None, None, 'mean'))


def run(x, y, w, pw):
    summed = nn.BCELoss(weight=w, size_average=False)(x, y)
    return summed + Head.loss(x, y, w)
