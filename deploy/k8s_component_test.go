package deploy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// component is a kustomize Component, reduced to what this one uses.
type component struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Patches    []struct {
		Path   string `json:"path"`
		Target struct {
			Kind          string `json:"kind"`
			LabelSelector string `json:"labelSelector"`
		} `json:"target"`
	} `json:"patches"`
}

// TestK8sVerifierdSidecar decodes deploy/k8s/components/verifierd
// strictly, applies its patch to the example Deployment as kustomize's
// strategic merge would (containers merge by name), and checks the wiring:
// the target label, the container's environment against what verifierd
// reads, probes on verifierd's own port gating readiness on /readyz, the
// base's hardening, and a NetworkPolicy that lets exactly the labelled
// pods reach NATS's client port.
func TestK8sVerifierdSidecar(t *testing.T) {
	const dir = "deploy/k8s/components/verifierd"
	var c component
	if err := yaml.UnmarshalStrict(readFile(t, path.Join(dir, "kustomization.yaml")), &c); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if c.Kind != "Component" || c.APIVersion != "kustomize.config.k8s.io/v1alpha1" || len(c.Patches) != 1 {
		t.Fatalf("not a Component with one patch: %+v", c)
	}
	p := c.Patches[0]
	sel, err := labels.Parse(p.Target.LabelSelector)
	if err != nil || p.Target.Kind != "Deployment" {
		t.Fatalf("patch target %+v: %v", p.Target, err)
	}
	var patch appsv1.Deployment
	if err := yaml.UnmarshalStrict(readFile(t, path.Join(dir, p.Path)), &patch); err != nil {
		t.Fatalf("%s: %v", p.Path, err)
	}
	podLabels := patch.Spec.Template.Labels
	if !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("the patch's pod label %v does not match the target %s: labelled Deployments' pods would not reach NATS", podLabels, sel)
	}
	if len(patch.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the patch adds %d containers, want 1", len(patch.Spec.Template.Spec.Containers))
	}
	side := patch.Spec.Template.Spec.Containers[0]

	configs := map[string]map[string]string{}
	var policies []networkingv1.NetworkPolicy
	for _, res := range c.Resources {
		for _, doc := range docSep.Split(string(readFile(t, path.Join(dir, res))), -1) {
			if len(strings.TrimSpace(string(stripComments([]byte(doc))))) == 0 {
				continue
			}
			var cm corev1.ConfigMap
			var np networkingv1.NetworkPolicy
			switch {
			case strings.Contains(doc, "kind: ConfigMap"):
				if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
					t.Fatalf("%s: %v", res, err)
				}
				configs[cm.Name] = cm.Data
			case strings.Contains(doc, "kind: NetworkPolicy"):
				if err := yaml.UnmarshalStrict([]byte(doc), &np); err != nil {
					t.Fatalf("%s: %v", res, err)
				}
				policies = append(policies, np)
			default:
				t.Fatalf("%s: unexpected object:\n%s", res, doc)
			}
		}
	}

	// The environment: what the ConfigMap and env give, all read by
	// verifierd, every required setting there.
	env := map[string]string{}
	for _, ef := range side.EnvFrom {
		data, ok := configs[ef.ConfigMapRef.Name]
		if !ok {
			t.Fatalf("envFrom ConfigMap %s is not in the component", ef.ConfigMapRef.Name)
		}
		for k, v := range data {
			env[k] = v
		}
	}
	for _, e := range side.Env {
		env[e.Name] = e.Value
	}
	set := map[string]bool{}
	for k := range env {
		set[k] = true
	}
	checkEnv(t, "the verifierd sidecar", envOf(t, authorizerBinary), authorizerBinary, set)
	if side.Image != "jwtrevoke" || len(side.Command) != 1 || side.Command[0] != "/usr/local/bin/verifierd" {
		t.Errorf("sidecar image %q command %v: want the one image's /usr/local/bin/verifierd", side.Image, side.Command)
	}
	if !strings.HasPrefix(env["JWTREVOKE_NATS_URL"], "nats://verifier:$(NATS_PASSWORD)@") {
		t.Errorf("JWTREVOKE_NATS_URL %q: want the consume-only user verifier", env["JWTREVOKE_NATS_URL"])
	}

	// Probes: on the port verifierd listens on, readiness and startup on
	// /readyz (the pod takes no traffic before the replay), liveness on
	// /healthz (an outage must not restart pods).
	port := listenPort(env["JWTREVOKE_LISTEN"])
	for name, pr := range map[string]*corev1.Probe{"startup": side.StartupProbe, "readiness": side.ReadinessProbe, "liveness": side.LivenessProbe} {
		want := "/readyz"
		if name == "liveness" {
			want = "/healthz"
		}
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want {
			t.Errorf("%s probe %+v: want GET %s", name, pr, want)
			continue
		}
		if n, ok := containerPort(side, pr.HTTPGet.Port); !ok || port != strconv.Itoa(int(n)) {
			t.Errorf("%s probe on port %v (%d), verifierd listens on %q", name, pr.HTTPGet.Port.String(), n, port)
		}
	}
	sc := side.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("sidecar securityContext %+v: want non-root, read-only root, no escalation, all capabilities dropped", sc)
	}
	if side.Resources.Requests.Memory().IsZero() || side.Resources.Limits.Memory().IsZero() {
		t.Error("sidecar without memory request and limit")
	}

	// Applied to the example Deployment: one more container, no name or
	// port clash.
	m := loadManifests(t)
	ex := m.deployments["example"].DeepCopy()
	for _, ct := range ex.Spec.Template.Spec.Containers {
		if ct.Name == side.Name {
			t.Errorf("the example Deployment already has a container %s", side.Name)
		}
		for _, p := range ct.Ports {
			if slices.ContainsFunc(side.Ports, func(sp corev1.ContainerPort) bool { return sp.ContainerPort == p.ContainerPort || sp.Name == p.Name }) {
				t.Errorf("the sidecar's port clashes with %s's %v", ct.Name, p)
			}
		}
	}

	// NATS: a policy selecting the NATS pods lets the labelled pods, from
	// any namespace, reach 4222 and nothing else.
	nats := m.statefulSets["nats"]
	found := false
	for _, np := range policies {
		if !labelSelector(t, np.Name, &np.Spec.PodSelector).Matches(labels.Set(nats.Spec.Template.Labels)) {
			continue
		}
		for _, in := range np.Spec.Ingress {
			for _, from := range in.From {
				if from.PodSelector != nil && labelSelector(t, np.Name, from.PodSelector).Matches(labels.Set(podLabels)) && from.NamespaceSelector != nil {
					found = len(in.Ports) == 1 && in.Ports[0].Port.IntValue() == 4222
				}
			}
		}
	}
	if !found {
		t.Error("no NetworkPolicy lets the sidecars (any namespace) reach NATS's client port 4222, and only it")
	}
}
