"""ROS-free logic behind `o4a record`, `o4a replay` and `o4a replay-check`.

- topics.py: topic-name normalisation, selection of a bag's topics, type-name parsing.
- qos.py: which QoS to subscribe / publish with (recording adapts to the publishers,
  replay reuses the QoS the recording saw).
- transport.py: how the recorder receives large messages (a Fast DDS profile: UDP instead
  of the publishers' shared memory, which drops large best-effort images).
- schedule.py: when each message is due during playback (--rate) and the /clock value.
- simrun.py: a navigation run of the navigator core in the simulator, written as a bag.
- navrun.py: a recorded navigation run (goal, per-step observations and actions), the
  comparison of replayed decisions with the recorded ones, and the report.
"""
