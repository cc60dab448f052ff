// Package config owns berth serve's configuration: the strict YAML file, its
// defaults and its validation. The file's fields follow the spec of the
// cluster's imageregistry.operator.openshift.io/v1 Config where they apply,
// so an existing object (or just its spec) can be fed in as is.
package config
