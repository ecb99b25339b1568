"""Smoke test of the rig contract: the needle follows the motor in free space."""

from sim_device.lesions import load_lesion
from sim_device.rig_model import Rig


def test_needle_follows_motor_in_free_space_and_encoder_reads_it() -> None:
    rig = Rig(load_lesion("soft-stenosis"), seed=0)
    depth_mm = rig.params.boot_depth_mm
    for _ in range(1000):
        depth_mm += 0.005
        rig.step(0.001, depth_mm, 0.0)
    assert abs(rig.needle_depth_mm - depth_mm) < 1e-9
    assert abs(rig.encoder_depth_mm - depth_mm) <= rig.params.encoder_resolution_um / 1000
    assert not rig.home_switch
