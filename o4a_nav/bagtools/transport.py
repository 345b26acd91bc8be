"""How the recorder receives large messages (ROS-free: environment and a Fast DDS profile).

Measured (scripts/bench_record.py, docs/BAGS.md): with Fast DDS (the Jazzy default RMW) a
publisher on the same host sends to a subscriber through its shared-memory segment,
512 KB by default. A 640x480 bgr8 image is 921,600 bytes: its fragments do not fit, and
with best-effort QoS (camera drivers: sensor data) the fragments that find no room are
discarded, so whole images are lost before any subscriber sees them: a subscriber that
only counts lost 61 % and 84 % of two 15 Hz cameras' images, the same as `o4a record`.
The segment that matters is the publisher's (a larger one in the subscriber alone
changes nothing), and a recorder cannot reconfigure the robot's drivers. It can ask for
the data another way: a participant that offers only UDPv4 locators (loopback on the same
host) with a large socket receive buffer gets every image from the same publishers.

`recorder_environment()` returns the environment for that: a Fast DDS XML profile (UDPv4
only, receive buffer RECV_BUFFER, capped by the kernel's net.core.rmem_max) when Fast DDS
is the RMW and the user has not set a profile of their own. With
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (or ROS_LOCALHOST_ONLY=1) rmw_fastrtps replaces the
profile's transports with its own shared memory + UDP, so there the recorder runs with
range SUBNET, 127.0.0.1 as a static peer and a UDP transport bound to the loopback
interface: it reaches the same local participants, and nothing off the host, as before.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

RECV_BUFFER = 32 * 1024 * 1024        # requested socket receive buffer (bytes)
MIN_RMEM = 8 * 1024 * 1024            # below this kernel cap, large images may still be lost
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
FASTDDS_RMWS = ("", "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")

PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<!-- o4a record: receive over UDPv4 (loopback on this host) with a large socket buffer instead of
     through the publishers' shared-memory segments, which drop large best-effort messages
     (o4a_nav/bagtools/transport.py) -->
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>o4a_record_udp</transport_id>
      <type>UDPv4</type>
      <receiveBufferSize>{buf}</receiveBufferSize>{loopback}
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="o4a_record" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>o4a_record_udp</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
      <listenSocketBufferSize>{buf}</listenSocketBufferSize>
    </rtps>
  </participant>
</profiles>
"""


def kernel_rmem_max() -> int | None:
    """net.core.rmem_max (bytes), or None where it cannot be read."""
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def recorder_environment(mode: str = "auto", env=None) -> tuple[dict, list[str]]:
    """(environment variables to set before rclpy starts, notes for the user).

    mode: "auto" (the UDP profile when Fast DDS is the RMW and no profile is set), "udp"
    (the same, also over a profile of the user's), "default" (leave the middleware as
    configured)."""
    env = os.environ if env is None else env
    if mode == "default":
        return {}, []
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw not in FASTDDS_RMWS:
        return {}, [f"RMW_IMPLEMENTATION={rmw}: the recorder's Fast DDS transport profile does not apply; "
                    f"large best-effort images may be lost in that middleware's own transport"]
    own = next((v for v in PROFILE_VARS if env.get(v)), None)
    if own and mode == "auto":
        return {}, [f"{own} is set: the recorder uses that Fast DDS profile (not its own UDP receive profile)"]
    localhost = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST" or (
        env.get("ROS_LOCALHOST_ONLY") == "1" and not env.get("ROS_AUTOMATIC_DISCOVERY_RANGE"))
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() in ("OFF", "SYSTEM_DEFAULT"):
        return {}, []
    loopback = ("\n      <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>"
                "\n      <maxInitialPeersRange>32</maxInitialPeersRange>") if localhost else ""
    fd, path = tempfile.mkstemp(prefix="o4a_record_fastdds_", suffix=".xml")
    with os.fdopen(fd, "w") as f:
        f.write(PROFILE.format(buf=RECV_BUFFER, loopback=loopback))
    out = {"FASTRTPS_DEFAULT_PROFILES_FILE": path, "FASTDDS_DEFAULT_PROFILES_FILE": path}
    if localhost:
        peers = [p for p in env.get("ROS_STATIC_PEERS", "").split(";") if p.strip()]
        out.update({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_LOCALHOST_ONLY": "0",
                    "ROS_STATIC_PEERS": ";".join(peers + ["127.0.0.1"])})
    notes = []
    rmem = kernel_rmem_max()
    if rmem is not None and rmem < MIN_RMEM:
        notes.append(f"net.core.rmem_max is {rmem} bytes: the socket buffer is capped there and bursts of large "
                     f"images may still be lost; raise it (sudo sysctl -w net.core.rmem_max={RECV_BUFFER})")
    return out, notes
