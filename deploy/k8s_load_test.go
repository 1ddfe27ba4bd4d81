package deploy

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// k8sDir is the kustomize directory, relative to the repository root.
const k8sDir = "deploy/k8s"

// kustomization is the part of kustomization.yaml these manifests use;
// decoding it strictly makes any other field fail the test.
type kustomization struct {
	APIVersion         string            `json:"apiVersion"`
	Kind               string            `json:"kind"`
	Namespace          string            `json:"namespace"`
	Resources          []string          `json:"resources"`
	ConfigMapGenerator []configGenerator `json:"configMapGenerator"`
	Images             []imageOverride   `json:"images"`
}

// imageOverride is one images entry: the image name the manifests use,
// replaced by the pushed one.
type imageOverride struct {
	Name    string `json:"name"`
	NewName string `json:"newName"`
	NewTag  string `json:"newTag"`
}

// configGenerator is one configMapGenerator entry.
type configGenerator struct {
	Name  string   `json:"name"`
	Files []string `json:"files"`
}

// manifests are the decoded objects of the kustomization.
type manifests struct {
	kust         kustomization
	namespaces   map[string]*corev1.Namespace
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	pdbs         map[string]*policyv1.PodDisruptionBudget
	netpols      map[string]*networkingv1.NetworkPolicy
	configMaps   map[string]map[string]string // generated ones included, by name then key
	secrets      map[string]map[string]string // stringData and data keys
	accounts     map[string]*corev1.ServiceAccount
	count        int
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes kustomization.yaml and every resource it lists,
// strictly, into the k8s.io/api types: an unknown or duplicated field fails.
func loadManifests(tb testing.TB) *manifests {
	tb.Helper()
	m := &manifests{
		namespaces: map[string]*corev1.Namespace{}, deployments: map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, netpols: map[string]*networkingv1.NetworkPolicy{},
		configMaps: map[string]map[string]string{}, secrets: map[string]map[string]string{},
		accounts: map[string]*corev1.ServiceAccount{},
	}
	if err := yaml.UnmarshalStrict(readFile(tb, path.Join(k8sDir, "kustomization.yaml")), &m.kust); err != nil {
		tb.Fatalf("kustomization.yaml: %v", err)
	}
	for _, g := range m.kust.ConfigMapGenerator {
		data := map[string]string{}
		for _, f := range g.Files {
			data[path.Base(f)] = string(readFile(tb, path.Join(k8sDir, f)))
		}
		m.configMaps[g.Name] = data
	}
	for _, res := range m.kust.Resources {
		for i, doc := range docSep.Split(string(readFile(tb, path.Join(k8sDir, res))), -1) {
			if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
				continue
			}
			where := fmt.Sprintf("%s, document %d", res, i)
			if err := m.add([]byte(doc)); err != nil {
				tb.Fatalf("%s: %v", where, err)
			}
			m.count++
		}
	}
	return m
}

// stripComments drops YAML comment lines, to tell an empty document.
func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
		}
	}
	return out
}

// add decodes one document strictly by its kind.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(obj any) error { return yaml.UnmarshalStrict(doc, obj) }
	dup := func(name string, exists bool) error {
		if name == "" {
			return fmt.Errorf("%s without a name", tm.Kind)
		}
		if exists {
			return fmt.Errorf("%s %s defined twice", tm.Kind, name)
		}
		return nil
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		var o corev1.Namespace
		if err := strict(&o); err != nil {
			return err
		}
		m.namespaces[o.Name] = &o
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.deployments[o.Name]
		m.deployments[o.Name] = &o
		return dup(o.Name, ok)
	case "apps/v1 StatefulSet":
		var o appsv1.StatefulSet
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.statefulSets[o.Name]
		m.statefulSets[o.Name] = &o
		return dup(o.Name, ok)
	case "v1 Service":
		var o corev1.Service
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.services[o.Name]
		m.services[o.Name] = &o
		return dup(o.Name, ok)
	case "v1 ServiceAccount":
		var o corev1.ServiceAccount
		if err := strict(&o); err != nil {
			return err
		}
		m.accounts[o.Name] = &o
	case "policy/v1 PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.pdbs[o.Name]
		m.pdbs[o.Name] = &o
		return dup(o.Name, ok)
	case "networking.k8s.io/v1 NetworkPolicy":
		var o networkingv1.NetworkPolicy
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.netpols[o.Name]
		m.netpols[o.Name] = &o
		return dup(o.Name, ok)
	case "v1 ConfigMap":
		var o corev1.ConfigMap
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.configMaps[o.Name]
		m.configMaps[o.Name] = o.Data
		return dup(o.Name, ok)
	case "v1 Secret":
		var o corev1.Secret
		if err := strict(&o); err != nil {
			return err
		}
		_, ok := m.secrets[o.Name]
		data := map[string]string{}
		for k, v := range o.StringData {
			data[k] = v
		}
		for k, v := range o.Data {
			data[k] = string(v)
		}
		m.secrets[o.Name] = data
		return dup(o.Name, ok)
	default:
		return fmt.Errorf("unexpected kind %q %q", tm.APIVersion, tm.Kind)
	}
	return nil
}
