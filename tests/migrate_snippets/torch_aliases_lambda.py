from torch.nn import BCEWithLogitsLoss as L
import torch.nn.functional as functional

loss_of = lambda a, b, p: functional.binary_cross_entropy_with_logits(
    a,
    b,
    pos_weight=p,  # per class
    reduction="none",
)


def run(x, y, w, pw):
    return loss_of(x, y, pw) * 2 + L(reduction='mean')(x, y)
