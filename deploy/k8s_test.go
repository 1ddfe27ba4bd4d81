package deploy

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is a Deployment or StatefulSet, reduced to what wiring needs.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
}

func (m *manifests) workloads() []workload {
	var out []workload
	for _, name := range slices.Sorted(maps.Keys(m.deployments)) {
		d := m.deployments[name]
		out = append(out, workload{"Deployment", name, ptrOr(d.Spec.Replicas, 1), d.Spec.Selector, d.Spec.Template})
	}
	for _, name := range slices.Sorted(maps.Keys(m.statefulSets)) {
		s := m.statefulSets[name]
		out = append(out, workload{"StatefulSet", name, ptrOr(s.Spec.Replicas, 1), s.Spec.Selector, s.Spec.Template})
	}
	return out
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// selecting returns the workloads whose pods sel selects.
func selecting(tb testing.TB, ws []workload, sel labels.Selector) []workload {
	tb.Helper()
	var out []workload
	for _, w := range ws {
		if sel.Matches(labels.Set(w.pod.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func labelSelector(tb testing.TB, where string, ls *metav1.LabelSelector) labels.Selector {
	tb.Helper()
	if ls == nil {
		tb.Fatalf("%s: no selector", where)
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		tb.Fatalf("%s: selector: %v", where, err)
	}
	return sel
}

// hasPort says whether a pod declares port (a name or a number).
func hasPort(pod corev1.PodSpec, port intstr.IntOrString) bool {
	for _, c := range pod.Containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

// containerPort resolves a probe's port to its number in c.
func containerPort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// TestK8sManifests decodes every manifest strictly and checks the wiring.
func TestK8sManifests(t *testing.T) {
	m := loadManifests(t)
	if m.count < 25 {
		t.Fatalf("decoded only %d objects", m.count)
	}
	if _, ok := m.namespaces[m.kust.Namespace]; !ok || m.kust.Namespace == "" {
		t.Errorf("kustomization namespace %q is not a Namespace resource", m.kust.Namespace)
	}
	ws := m.workloads()
	envs := binaryEnvs(t)

	t.Run("replicas and selectors", func(t *testing.T) {
		want := map[string]int32{"issuer": 2, "revoker": 2, "example": 3, "nats": 3, "redis": 3}
		got := map[string]int32{}
		for _, w := range ws {
			got[w.name] = w.replicas
			if !labelSelector(t, w.name, w.selector).Matches(labels.Set(w.pod.Labels)) {
				t.Errorf("%s %s: selector %v does not match its pod labels %v", w.kind, w.name, w.selector, w.pod.Labels)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("replicas %v, want %v", got, want)
		}
		for name, s := range m.statefulSets {
			svc, ok := m.services[s.Spec.ServiceName]
			if !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("StatefulSet %s: serviceName %q is not a headless Service", name, s.Spec.ServiceName)
			}
			if len(s.Spec.VolumeClaimTemplates) == 0 {
				t.Errorf("StatefulSet %s: no persistent volume", name)
			}
		}
	})

	t.Run("services", func(t *testing.T) {
		for name, svc := range m.services {
			sel := labels.SelectorFromSet(svc.Spec.Selector)
			matched := selecting(t, ws, sel)
			if len(svc.Spec.Selector) == 0 || len(matched) == 0 {
				t.Errorf("Service %s selects no workload", name)
				continue
			}
			for _, p := range svc.Spec.Ports {
				for _, w := range matched {
					if !hasPort(w.pod.Spec, p.TargetPort) {
						t.Errorf("Service %s port %s: target %s is not a port of %s", name, p.Name, p.TargetPort.String(), w.name)
					}
				}
			}
		}
	})

	t.Run("disruption budgets", func(t *testing.T) {
		covered := map[string]bool{}
		for name, pdb := range m.pdbs {
			matched := selecting(t, ws, labelSelector(t, "PodDisruptionBudget "+name, pdb.Spec.Selector))
			if len(matched) != 1 {
				t.Errorf("PodDisruptionBudget %s selects %d workloads, want 1", name, len(matched))
			}
			for _, w := range matched {
				covered[w.name] = true
				if pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= int(w.replicas) {
					t.Errorf("PodDisruptionBudget %s: minAvailable %s blocks every eviction of %d replicas", name, pdb.Spec.MinAvailable.String(), w.replicas)
				}
			}
		}
		for _, w := range ws {
			if !covered[w.name] {
				t.Errorf("%s %s has no PodDisruptionBudget", w.kind, w.name)
			}
		}
	})

	t.Run("network policies", func(t *testing.T) {
		if np, ok := m.netpols["default-deny-ingress"]; !ok || len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) != 0 || len(np.Spec.Ingress) != 0 {
			t.Error("no default-deny-ingress NetworkPolicy selecting every pod")
		}
		for name, np := range m.netpols {
			if name == "default-deny-ingress" {
				continue
			}
			matched := selecting(t, ws, labelSelector(t, "NetworkPolicy "+name, &np.Spec.PodSelector))
			if len(matched) == 0 {
				t.Errorf("NetworkPolicy %s selects no workload", name)
			}
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port == nil || !slices.ContainsFunc(matched, func(w workload) bool { return hasPort(w.pod.Spec, *p.Port) }) {
						t.Errorf("NetworkPolicy %s: port %v is no port of the pods it selects", name, p.Port)
					}
				}
				for _, peer := range rule.From {
					if peer.PodSelector != nil && peer.NamespaceSelector == nil {
						if len(selecting(t, ws, labelSelector(t, name, peer.PodSelector))) == 0 {
							t.Errorf("NetworkPolicy %s: a peer selects no workload of the namespace", name)
						}
					}
				}
			}
		}
		// Every client of NATS is let in, and only they: the issuer
		// reads Redis only.
		natsFrom := fmt.Sprint(m.netpols["nats"].Spec.Ingress[0].From)
		for _, c := range []string{"revoker", "example"} {
			if !strings.Contains(natsFrom, c) {
				t.Errorf("NetworkPolicy nats does not admit %s", c)
			}
		}
		if strings.Contains(natsFrom, "issuer") {
			t.Error("NetworkPolicy nats admits the issuer, which does not connect to NATS")
		}
	})

	t.Run("pods", func(t *testing.T) {
		for _, w := range ws {
			spec := w.pod.Spec
			where := w.kind + " " + w.name
			if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s: runAsNonRoot not set", where)
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service account token it does not need", where)
			}
			if len(spec.TopologySpreadConstraints) == 0 {
				t.Errorf("%s: no topology spread", where)
			}
			for _, tsc := range spec.TopologySpreadConstraints {
				if !labelSelector(t, where, tsc.LabelSelector).Matches(labels.Set(w.pod.Labels)) {
					t.Errorf("%s: topology spread on %s does not select its own pods", where, tsc.TopologyKey)
				}
			}
			for _, v := range spec.Volumes {
				switch {
				case v.Secret != nil:
					if _, ok := m.secrets[v.Secret.SecretName]; !ok {
						t.Errorf("%s: volume %s: Secret %q does not exist", where, v.Name, v.Secret.SecretName)
					}
				case v.ConfigMap != nil:
					if _, ok := m.configMaps[v.ConfigMap.Name]; !ok {
						t.Errorf("%s: volume %s: ConfigMap %q does not exist", where, v.Name, v.ConfigMap.Name)
					}
				}
			}
			for _, c := range spec.Containers {
				cw := where + " container " + c.Name
				if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s: needs cpu and memory requests and a memory limit", cw)
				}
				if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
					t.Errorf("%s: allowPrivilegeEscalation must be false", cw)
				}
				for _, vm := range c.VolumeMounts {
					if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) &&
						!slices.ContainsFunc(statefulClaims(m, w), func(n string) bool { return n == vm.Name }) {
						t.Errorf("%s: mounts %s, which is no volume", cw, vm.Name)
					}
				}
				for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
					if p == nil {
						if !(c.Name == "sentinel" && kind == "startup") {
							t.Errorf("%s: no %s probe", cw, kind)
						}
						continue
					}
					if p.HTTPGet != nil {
						if _, ok := containerPort(c, p.HTTPGet.Port); !ok {
							t.Errorf("%s: %s probe port %s is not a port of the container", cw, kind, p.HTTPGet.Port.String())
						}
					}
				}
			}
		}
	})

	t.Run("services' containers", func(t *testing.T) {
		for _, name := range binaries {
			d, ok := m.deployments[name]
			if !ok {
				t.Errorf("no Deployment %s", name)
				continue
			}
			if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
				t.Errorf("Deployment %s: a rollout must not go below the wanted replicas", name)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if len(c.Command) != 1 || path.Base(c.Command[0]) != name || c.Image != "jwtrevoke" {
				t.Errorf("Deployment %s: runs %v from %q, want the %s binary of image jwtrevoke", name, c.Command, c.Image, name)
			}
			probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
			for kind, want := range map[string]string{"startup": "/readyz", "readiness": "/readyz", "liveness": "/healthz"} {
				if p := probes[kind]; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
					t.Errorf("Deployment %s: %s probe must GET %s", name, kind, want)
				}
			}
			// The scrape annotations name the port the service listens on.
			ann := d.Spec.Template.Annotations
			port, _ := containerPort(c, intstr.FromString("http"))
			if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != fmt.Sprint(port) {
				t.Errorf("Deployment %s: scrape annotations %v, want port %d path /metrics", name, ann, port)
			}
			env := resolveEnv(t, m, c, &secretValues{})
			checkEnv(t, "Deployment "+name, envs[name], name, setOf(env))
			if listen := env["JWTREVOKE_LISTEN"]; listen != "" && !strings.HasSuffix(listen, fmt.Sprintf(":%d", port)) {
				t.Errorf("Deployment %s: listens on %s, not its port %d", name, listen, port)
			}
			checkFiles(t, m, d.Spec.Template.Spec, c, env)
		}
		if m.configMaps["revoker-config"]["JWTREVOKE_STREAM_REPLICAS"] != "3" {
			t.Error("the revoker must create the stream with 3 replicas")
		}
		if len(m.kust.Images) != 1 || m.kust.Images[0].Name != "jwtrevoke" {
			t.Errorf("kustomization images %v: want the one override for jwtrevoke", m.kust.Images)
		}
		// Issuer, revoker and verifiers agree on iss and audience.
		iss := m.configMaps["issuer-config"]["JWTREVOKE_ISSUER"]
		for _, cm := range []string{"revoker-config", "example-config"} {
			if got := m.configMaps[cm]["JWTREVOKE_ISSUER"]; got != iss {
				t.Errorf("%s: issuer %q, the issuer mints %q", cm, got, iss)
			}
			if got := m.configMaps[cm]["JWTREVOKE_JWKS_URL"]; got != iss+"/.well-known/jwks.json" {
				t.Errorf("%s: JWKS %q is not the issuer's", cm, got)
			}
		}
	})

	t.Run("nats config", func(t *testing.T) {
		dir := t.TempDir()
		for name, body := range m.configMaps["nats-config"] {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		sv := &secretValues{}
		for k, v := range resolveEnv(t, m, m.statefulSets["nats"].Spec.Template.Spec.Containers[0], sv) {
			t.Setenv(k, v)
		}
		opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
		if err != nil {
			t.Fatalf("nats.conf: %v", err)
		}
		if !opts.JetStream || !opts.SyncAlways {
			t.Errorf("JetStream %v, sync always %v: want both", opts.JetStream, opts.SyncAlways)
		}
		if len(opts.Routes) != 3 || len(opts.Users) != 2 {
			t.Errorf("%d routes and %d users, want 3 and 2 (revoker, verifier)", len(opts.Routes), len(opts.Users))
		}
		for _, r := range opts.Routes {
			if !strings.HasSuffix(r.Host, ".nats-headless:6222") {
				t.Errorf("route %s is not a pod of the headless Service", r)
			}
		}
		c := m.statefulSets["nats"].Spec.Template.Spec.Containers[0]
		grace := time.Duration(ptrOr64(m.statefulSets["nats"].Spec.Template.Spec.TerminationGracePeriodSeconds)) * time.Second
		if opts.LameDuckDuration+opts.LameDuckGracePeriod >= grace {
			t.Errorf("lame duck %s + %s does not fit in the termination grace period %s", opts.LameDuckDuration, opts.LameDuckGracePeriod, grace)
		}
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil ||
			!slices.Contains(c.Lifecycle.PreStop.Exec.Command, "-sl=ldm="+opts.PidFile) {
			t.Errorf("nats preStop must signal lame-duck mode through %s", opts.PidFile)
		}
		for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || !strings.HasPrefix(p.HTTPGet.Path, "/healthz") {
				t.Errorf("nats probes must GET /healthz on the monitoring port")
			} else if port, _ := containerPort(c, p.HTTPGet.Port); int(port) != opts.HTTPPort {
				t.Errorf("nats probe on port %d, monitoring listens on %d", port, opts.HTTPPort)
			}
		}
	})

	t.Run("redis persistence", func(t *testing.T) {
		script := m.configMaps["redis-scripts"]["redis.sh"]
		for _, want := range []string{"appendonly yes", "appendfsync always", "dir /data", "requirepass ${REDIS_PASSWORD}", "masterauth ${REDIS_PASSWORD}"} {
			if !strings.Contains(script, want) {
				t.Errorf("redis.sh does not configure %q", want)
			}
		}
		if strings.Contains(script, "appendonly no") {
			t.Error("redis.sh turns persistence off")
		}
		c := m.statefulSets["redis"].Spec.Template.Spec.Containers[0]
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.Name == "data" && vm.MountPath == "/data" }) {
			t.Error("redis data is not on the persistent volume")
		}
		sentinels := strings.Split(m.configMaps["issuer-config"]["JWTREVOKE_REDIS_ADDRS"], ",")
		if len(sentinels) != 3 || m.configMaps["issuer-config"]["JWTREVOKE_REDIS_MASTER"] == "" ||
			!strings.Contains(m.configMaps["redis-scripts"]["sentinel.sh"], "sentinel monitor "+m.configMaps["issuer-config"]["JWTREVOKE_REDIS_MASTER"]+" ") {
			t.Error("the issuer does not use the three Sentinels and their master name")
		}
	})
}

func ptrOr64(p *int64) int64 {
	if p == nil {
		return 30
	}
	return *p
}

func statefulClaims(m *manifests, w workload) []string {
	var out []string
	if s, ok := m.statefulSets[w.name]; ok && w.kind == "StatefulSet" {
		for _, c := range s.Spec.VolumeClaimTemplates {
			out = append(out, c.Name)
		}
	}
	return out
}

func setOf(env map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range env {
		out[k] = true
	}
	return out
}

// checkFiles checks that every file a setting names (…_FILE, KEY_DIR) is
// a key of the Secret mounted at that directory.
func checkFiles(tb testing.TB, m *manifests, spec corev1.PodSpec, c corev1.Container, env map[string]string) {
	tb.Helper()
	for name, p := range env {
		isDir := name == "JWTREVOKE_KEY_DIR"
		if !isDir && !strings.HasSuffix(name, "_FILE") {
			continue
		}
		dir, key := path.Dir(p), path.Base(p)
		if isDir {
			dir = p
		}
		i := slices.IndexFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == dir })
		if i < 0 {
			tb.Errorf("container %s: %s=%s: nothing is mounted at %s", c.Name, name, p, dir)
			continue
		}
		vi := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })
		if vi < 0 || spec.Volumes[vi].Secret == nil {
			tb.Errorf("container %s: %s: %s is not a Secret volume", c.Name, name, dir)
			continue
		}
		data := m.secrets[spec.Volumes[vi].Secret.SecretName]
		if _, ok := data[key]; !isDir && !ok {
			tb.Errorf("container %s: %s: Secret %s has no key %s", c.Name, name, spec.Volumes[vi].Secret.SecretName, key)
		}
		if isDir && len(data) == 0 {
			tb.Errorf("container %s: %s: Secret %s holds no key", c.Name, name, spec.Volumes[vi].Secret.SecretName)
		}
	}
}
