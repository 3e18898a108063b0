#!/bin/bash
# Train on a Cloud TPU VM pod slice (e.g. v5litepod-16: 4 hosts x 4 chips): one `attnjax train`
# process per host, started on every worker at once.
#
#   experiments/cluster/tpu_pod.sh NAME ZONE [CONFIG] [WORKDIR]
#   experiments/cluster/tpu_pod.sh my-pod us-west4-a configs/transformer.py:size=base /mnt/shared/runs/tbase
#
# On a TPU VM the processes find each other by themselves (attnjax.parallel.detect_cluster sees
# libtpu and the TPU chips; JAX reads the workers from the VM's metadata). WORKDIR and
# ATTNJAX_DATA_DIR must be on storage every worker mounts at the same path (e.g. a Filestore
# NFS share); the repository is expected in ~/attnjax on every worker, installed with
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all --command="git clone <repo> ~/attnjax &&
#     cd ~/attnjax && python3 -m venv .venv && .venv/bin/pip install -e '.[tpu]'"
set -euo pipefail
NAME=${1:?usage: tpu_pod.sh NAME ZONE [CONFIG] [WORKDIR]}
ZONE=${2:?usage: tpu_pod.sh NAME ZONE [CONFIG] [WORKDIR]}
CONFIG=${3:-configs/transformer.py:size=base}
WORKDIR=${4:-/mnt/shared/runs/transformer-base}
DATA_DIR=${ATTNJAX_DATA_DIR:-/mnt/shared/data}

# Prepare the corpus once, on worker 0, then train on all workers.
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=0 \
  --command="cd ~/attnjax && ATTNJAX_DATA_DIR=$DATA_DIR .venv/bin/attnjax prepare --config '$CONFIG'"
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all \
  --command="cd ~/attnjax && ATTNJAX_DATA_DIR=$DATA_DIR .venv/bin/attnjax train --config '$CONFIG' --workdir '$WORKDIR' --quiet"
