"""What runs Steersman: host processes, the local cluster, the kubelet and the steer CLI."""
