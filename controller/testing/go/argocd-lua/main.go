// argocd-lua runs Argo CD resource customizations (health.lua, actions/) the way Argo CD does.
//
// Argo CD evaluates a customization from argocd-cm in gopher-lua with only the package, base and
// table libraries open, plus a "safe" os module holding just os.time and os.date, and a one-second
// deadline (argo-cd util/lua/lua.go runLua, oslib_safe.go). This program builds the same state, so a
// script that uses string.*, math.* or io.* fails here as it would in Argo CD. It also reads Argo
// CD's own test files, health_test.yaml and actions/action_test.yaml, and checks every case.
//
// Usage:
//
//	argocd-lua test DIR...          run DIR/health_test.yaml and DIR/actions/action_test.yaml
//	argocd-lua health SCRIPT [FILE] print {"status","message"} for one object (FILE or stdin)
//	argocd-lua discovery SCRIPT [FILE]  print the actions discovery.lua offers, as JSON
//	argocd-lua action SCRIPT [FILE] print the impacted resources an action returns, as JSON
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// ---------------------------------------------------------------- the Lua state Argo CD builds

var safeOs = map[string]lua.LGFunction{"time": osTime, "date": osDate}

func openSafeOs(L *lua.LState) int {
	L.Push(L.RegisterModule(lua.OsLibName, safeOs))
	return 1
}

func safeOsLoader(L *lua.LState) int {
	L.Push(L.SetFuncs(L.NewTable(), safeOs))
	return 1
}

func osTime(L *lua.LState) int {
	if L.GetTop() == 0 {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	tbl := L.CheckTable(1)
	field := func(key string, def int) int {
		if n, ok := tbl.RawGetString(key).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	t := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	L.Push(lua.LNumber(t.Unix()))
	return 1
}

// The strftime subset Argo CD's safe os.date understands.
var dateFlags = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'P': "pm", 'S': "05",
	'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func osDate(L *lua.LState) int {
	t := time.Now()
	format := "%c"
	if L.GetTop() >= 1 {
		format = L.CheckString(1)
		if strings.HasPrefix(format, "!") {
			t = t.UTC()
			format = strings.TrimLeft(format, "!")
		}
		if L.GetTop() >= 2 {
			t = time.Unix(L.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			ret := L.NewTable()
			for k, v := range map[string]int{"year": t.Year(), "month": int(t.Month()), "day": t.Day(),
				"hour": t.Hour(), "min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0} {
				ret.RawSetString(k, lua.LNumber(v))
			}
			ret.RawSetString("isdst", lua.LFalse)
			L.Push(ret)
			return 1
		}
	}
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			out.WriteByte(c)
			continue
		}
		i++
		if layout, ok := dateFlags[format[i]]; ok {
			out.WriteString(t.Format(layout))
		} else if format[i] == 'w' {
			out.WriteString(fmt.Sprint(int(t.Weekday())))
		} else if format[i] == '%' {
			out.WriteByte('%')
		} else {
			out.WriteByte('%')
			out.WriteByte(format[i])
		}
	}
	L.Push(lua.LString(out.String()))
	return 1
}

// run evaluates script with the global obj set, and returns the script's result as JSON.
func run(obj map[string]interface{}, script string) ([]byte, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	L.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	ret := L.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	return luajson.Encode(ret)
}

func toLua(L *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		arr := L.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(L, item))
		}
		return arr
	case map[string]interface{}:
		tbl := L.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(L, item))
		}
		return tbl
	}
	return lua.LNil
}

// ---------------------------------------------------------------- what Argo CD makes of the result

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

var healthCodes = map[string]bool{"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true,
	"Degraded": true, "Missing": true}

func health(obj map[string]interface{}, script string) (healthStatus, error) {
	out, err := run(obj, script)
	if err != nil {
		return healthStatus{}, err
	}
	var hs healthStatus
	if err := json.Unmarshal(out, &hs); err != nil {
		return healthStatus{}, err
	}
	if !healthCodes[hs.Status] {
		return healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

type resourceAction struct {
	Name        string        `json:"name"`
	Disabled    bool          `json:"disabled"`
	DisplayName string        `json:"displayName,omitempty"`
	IconClass   string        `json:"iconClass,omitempty"`
	Params      []interface{} `json:"params,omitempty"`
}

func discovery(obj map[string]interface{}, script string) ([]resourceAction, error) {
	out, err := run(obj, script)
	if err != nil {
		return nil, err
	}
	actions := []resourceAction{}
	if string(out) == "[]" { // an empty Lua table encodes as an empty array
		return actions, nil
	}
	found := map[string]json.RawMessage{}
	if err := json.Unmarshal(out, &found); err != nil {
		return nil, err
	}
	for name, raw := range found {
		action := resourceAction{Name: name}
		if string(raw) != "[]" {
			if err := json.Unmarshal(raw, &action); err != nil {
				return nil, fmt.Errorf("action %s: %w", name, err)
			}
			action.Name = name
		}
		actions = append(actions, action)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

type impacted struct {
	Object    map[string]interface{} `json:"unstructuredObj"`
	Operation string                 `json:"operation"`
}

func action(obj map[string]interface{}, script string) ([]impacted, error) {
	out, err := run(obj, script)
	if err != nil {
		return nil, err
	}
	var result []impacted
	if len(out) > 0 && out[0] == '[' { // new style: a list of {operation, resource}
		var listed []struct {
			Resource  map[string]interface{} `json:"resource"`
			Operation string                 `json:"operation"`
		}
		if err := json.Unmarshal(out, &listed); err != nil {
			return nil, err
		}
		for _, r := range listed {
			result = append(result, impacted{Object: r.Resource, Operation: r.Operation})
		}
	} else { // old style: the changed object itself, applied as a patch
		changed := map[string]interface{}{}
		if err := json.Unmarshal(out, &changed); err != nil {
			return nil, err
		}
		result = []impacted{{Object: changed, Operation: "patch"}}
	}
	for i := range result {
		if result[i].Operation == "patch" {
			result[i].Object = cleanMap(result[i].Object, obj)
		}
	}
	return result, nil
}

// cleanMap undoes what Lua cannot tell apart: an empty table that was an object (`{}`) comes back
// as an empty array. Argo CD restores such members from the original object; so does this.
func cleanMap(changed, original map[string]interface{}) map[string]interface{} {
	for key, was := range original {
		now, ok := changed[key]
		if !ok {
			continue
		}
		switch n := now.(type) {
		case map[string]interface{}:
			if w, ok := was.(map[string]interface{}); ok {
				changed[key] = cleanMap(n, w)
			}
		case []interface{}:
			switch w := was.(type) {
			case map[string]interface{}:
				if len(n) == 0 {
					changed[key] = w
				}
			case []interface{}:
				changed[key] = cleanSlice(n, w)
			}
		}
	}
	return changed
}

func cleanSlice(changed, original []interface{}) []interface{} {
	for i := range changed {
		if i >= len(original) {
			break
		}
		switch n := changed[i].(type) {
		case map[string]interface{}:
			if w, ok := original[i].(map[string]interface{}); ok {
				changed[i] = cleanMap(n, w)
			}
		case []interface{}:
			if w, ok := original[i].([]interface{}); ok {
				changed[i] = cleanSlice(n, w)
			}
		}
	}
	return changed
}

// ---------------------------------------------------------------- Argo CD's test files

type healthTests struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []resourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action               string `json:"action"`
		InputPath            string `json:"inputPath"`
		ExpectedOutputPath   string `json:"expectedOutputPath"`
		ExpectedErrorMessage string `json:"expectedErrorMessage"`
	} `json:"actionTests"`
}

// A request annotation holds the time the action ran; only its shape is fixed. Like the per-group
// normalizer of Argo CD's own action tests, a timestamp there compares as the zero time, so a
// value of any other shape still fails the comparison.
var requestAnnotations = []string{"delivery.pratiko.ai/promote", "delivery.pratiko.ai/abort", "delivery.pratiko.ai/retry"}
var timestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(#full)?$`)

func normalize(obj map[string]interface{}) {
	meta, _ := obj["metadata"].(map[string]interface{})
	annotations, _ := meta["annotations"].(map[string]interface{})
	for _, key := range requestAnnotations {
		if v, ok := annotations[key].(string); ok && timestamp.MatchString(v) {
			// The time is normalized; a suffix (promote --full's "#full") must match as written.
			annotations[key] = "0001-01-01T00:00:00Z" + timestamp.FindStringSubmatch(v)[1]
		}
	}
}

func readObject(path string) (map[string]interface{}, error) {
	var raw []byte
	var err error
	if path == "" || path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	obj := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

func readScript(path string) (string, error) {
	raw, err := os.ReadFile(path)
	return string(raw), err
}

func roundTrip(v interface{}) interface{} {
	raw, _ := json.Marshal(v)
	var out interface{}
	_ = json.Unmarshal(raw, &out)
	return out
}

type tally struct{ passed, failed int }

func (t *tally) check(name string, err error) {
	if err != nil {
		t.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	t.passed++
	fmt.Printf("ok   %s\n", name)
}

func testDir(dir string, t *tally) error {
	ran := false
	if raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml")); err == nil {
		ran = true
		var suite healthTests
		if err := yaml.UnmarshalStrict(raw, &suite); err != nil {
			return fmt.Errorf("%s/health_test.yaml: %w", dir, err)
		}
		script, err := readScript(filepath.Join(dir, "health.lua"))
		if err != nil {
			return err
		}
		for _, tc := range suite.Tests {
			t.check("health/"+tc.InputPath, func() error {
				obj, err := readObject(filepath.Join(dir, tc.InputPath))
				if err != nil {
					return err
				}
				got, err := health(obj, script)
				if err != nil {
					return err
				}
				if got != tc.HealthStatus {
					return fmt.Errorf("got %+v, want %+v", got, tc.HealthStatus)
				}
				return nil
			}())
		}
	}
	actions := filepath.Join(dir, "actions")
	if raw, err := os.ReadFile(filepath.Join(actions, "action_test.yaml")); err == nil {
		ran = true
		var suite actionTests
		if err := yaml.UnmarshalStrict(raw, &suite); err != nil {
			return fmt.Errorf("%s/action_test.yaml: %w", actions, err)
		}
		for _, tc := range suite.DiscoveryTests {
			t.check("discovery/"+tc.InputPath, func() error {
				script, err := readScript(filepath.Join(actions, "discovery.lua"))
				if err != nil {
					return err
				}
				obj, err := readObject(filepath.Join(actions, tc.InputPath))
				if err != nil {
					return err
				}
				got, err := discovery(obj, script)
				if err != nil {
					return err
				}
				want := append([]resourceAction(nil), tc.Result...)
				sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
				// Argo CD asserts each offered action is listed; this also wants nothing missing.
				if !reflect.DeepEqual(roundTrip(got), roundTrip(want)) {
					return fmt.Errorf("got %s, want %s", mustJSON(got), mustJSON(want))
				}
				return nil
			}())
		}
		for _, tc := range suite.ActionTests {
			t.check(fmt.Sprintf("actions/%s/%s", tc.Action, tc.InputPath), func() error {
				script, err := readScript(filepath.Join(actions, tc.Action, "action.lua"))
				if err != nil {
					return err
				}
				obj, err := readObject(filepath.Join(actions, tc.InputPath))
				if err != nil {
					return err
				}
				got, err := action(obj, script)
				if tc.ExpectedErrorMessage != "" {
					if err == nil || err.Error() != tc.ExpectedErrorMessage {
						return fmt.Errorf("got error %v, want %q", err, tc.ExpectedErrorMessage)
					}
					return nil
				}
				if err != nil {
					return err
				}
				want, err := readObject(filepath.Join(actions, tc.ExpectedOutputPath))
				if err != nil {
					return err
				}
				if len(got) != 1 || got[0].Operation != "patch" {
					return fmt.Errorf("want one patched object, got %s", mustJSON(got))
				}
				normalize(got[0].Object)
				normalize(want)
				if !reflect.DeepEqual(roundTrip(got[0].Object), roundTrip(want)) {
					return fmt.Errorf("output differs from %s:\n got  %s\n want %s", tc.ExpectedOutputPath,
						mustJSON(got[0].Object), mustJSON(want))
				}
				return nil
			}())
		}
	}
	if !ran {
		return fmt.Errorf("%s: neither health_test.yaml nor actions/action_test.yaml", dir)
	}
	return nil
}

func mustJSON(v interface{}) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua test DIR... | health|discovery|action SCRIPT [FILE]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	if cmd == "test" {
		t := &tally{}
		for _, dir := range args {
			if err := testDir(dir, t); err != nil {
				fmt.Fprintln(os.Stderr, "argocd-lua:", err)
				os.Exit(2)
			}
		}
		fmt.Printf("%d passed, %d failed\n", t.passed, t.failed)
		if t.failed > 0 || t.passed == 0 {
			os.Exit(1)
		}
		return
	}
	script, err := readScript(args[0])
	if err == nil {
		var obj map[string]interface{}
		file := ""
		if len(args) > 1 {
			file = args[1]
		}
		if obj, err = readObject(file); err == nil {
			var out interface{}
			switch cmd {
			case "health":
				out, err = health(obj, script)
			case "discovery":
				out, err = discovery(obj, script)
			case "action":
				out, err = action(obj, script)
			default:
				err = errors.New("unknown command " + cmd)
			}
			if err == nil {
				fmt.Println(mustJSON(out))
				return
			}
		}
	}
	fmt.Fprintln(os.Stderr, "argocd-lua:", err)
	os.Exit(1)
}
