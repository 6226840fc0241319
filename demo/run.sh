#!/usr/bin/env bash
# The demo: push, a new commit picked up by reconcile, drift healed, and the HTML report.
#
#   make demo          (or: bash demo/run.sh)
#
# Brings up the project's local control plane (tests/cluster/up), creates a local Git
# repository holding two example apps (demo/apps: a kustomize app and a Helm chart), and runs
# the collection's playbooks against it. Everything lives under $GITOPS_DEMO_DIR
# (default ~/.cache/gitops-k8s/demo, recreated on every run).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
DEMO="${GITOPS_DEMO_DIR:-$HOME/.cache/gitops-k8s/demo}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Local control plane"
"$REPO/tests/cluster/up" >/dev/null
eval "$("$REPO/tests/cluster/env")"
export ANSIBLE_PYTHON_INTERPRETER="$REPO/.venv/bin/python" ANSIBLE_LOCALHOST_WARNING=0
kubectl get nodes

step "A Git repository with two apps (shop: kustomize, guestbook: Helm) in $DEMO"
rm -rf "$DEMO"
mkdir -p "$DEMO"
git init -q -b main "$DEMO/work"
git init -q --bare -b main "$DEMO/deploy.git"
cp -r "$HERE/apps/." "$DEMO/work/"
commit() {
    git -C "$DEMO/work" add -A
    git -C "$DEMO/work" -c user.name=Demo -c user.email=demo@example.com commit -q -m "$1"
    git -C "$DEMO/work" push -q "$DEMO/deploy.git" main
}
commit "Shop and guestbook"

cat > "$DEMO/inventory.yml" <<YAML
all:
  hosts:
    demo-cluster:
      ansible_connection: local
      gitops_cluster:
        kubeconfig: $KUBECONFIG
      gitops_apps:
        - name: demo-shop
          repo: file://$DEMO/deploy.git
          version: main
          path: shop/production
          namespace: demo-shop
          prune: true
          self_heal: true
          rollback: true
          wait: {timeout: 120}
        - name: demo-guestbook
          repo: file://$DEMO/deploy.git
          version: main
          path: guestbook
          namespace: demo-guestbook
          render:
            release_name: guestbook
            values_files: [values-production.yaml]
          depends_on: [demo-shop]
YAML
playbook() {
    (cd "$DEMO" && ansible-playbook -i inventory.yml "$@" -e gitops_report_dir="$DEMO/report")
}

step "Push: ansible-playbook gitops.k8s.push"
playbook gitops.k8s.push
kubectl -n demo-shop get deployments,services,configmaps,secrets

step "A new commit (the greeting changes), picked up by: ansible-playbook gitops.k8s.reconcile"
sed -i 's/Hello from Git/Hello from the second commit/' "$DEMO/work/shop/base/config.yaml"
commit "Change the greeting"
playbook gitops.k8s.reconcile
echo "greeting in the cluster: $(kubectl -n demo-shop get configmap web-config -o jsonpath='{.data.GREETING}')"

step "Drift: someone scales shop/web by hand to 6 replicas"
kubectl -n demo-shop scale deployment web --replicas=6
step "What reconcile would do: ansible-playbook gitops.k8s.reconcile --check --diff"
playbook gitops.k8s.reconcile --check --diff
step "Reconcile with self_heal puts Git's 3 replicas back"
playbook gitops.k8s.reconcile
echo "web replicas in the cluster: $(kubectl -n demo-shop get deployment web -o jsonpath='{.spec.replicas}')"

step "Done"
echo "History in the cluster:  ansible localhost -m gitops.k8s.app_info -a app=demo-shop"
echo "HTML report:             $DEMO/report/report.html"
echo "JSON report:             $DEMO/report/report.json"
