// kstatus: what Flux's health checks and Helm 4's --wait conclude about an object.
//
// It calls the real library (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute) on each object it
// is given, so tests assert the verdict those tools reach instead of a reimplementation of it.
//
// Usage: kstatus [FILE...]   (no FILE: one object, YAML or JSON, on stdin)
// Prints one JSON line per object: {"file", "status", "message", "conditions"}; exit 2 on bad input.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	File       string             `json:"file,omitempty"`
	Status     string             `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions"`
}

func compute(raw []byte, file string) (verdict, error) {
	// Through JSON into Unstructured, as a client reads it: integers stay int64, which kstatus requires.
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return verdict{}, fmt.Errorf("%s: not YAML or JSON: %w", file, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return verdict{}, fmt.Errorf("%s: not a Kubernetes object: %w", file, err)
	}
	result, err := status.Compute(obj)
	if err != nil {
		return verdict{}, fmt.Errorf("%s: %w", file, err)
	}
	conditions := result.Conditions
	if conditions == nil {
		conditions = []status.Condition{}
	}
	return verdict{File: file, Status: result.Status.String(), Message: result.Message, Conditions: conditions}, nil
}

func main() {
	inputs := os.Args[1:]
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	out := json.NewEncoder(os.Stdout)
	for _, file := range inputs {
		var raw []byte
		var err error
		if file == "-" {
			raw, err = io.ReadAll(os.Stdin)
			file = ""
		} else {
			raw, err = os.ReadFile(file)
		}
		if err == nil {
			var v verdict
			if v, err = compute(raw, file); err == nil {
				err = out.Encode(v)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(2)
		}
	}
}
