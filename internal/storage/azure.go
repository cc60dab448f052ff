package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob/azureblob"
)

// AzureConfig locates an Azure Blob Storage container, with the fields of
// the image registry operator's spec.storage.azure that apply, plus an
// endpoint override for Azure Stack and emulators (Azurite).
type AzureConfig struct {
	// AccountName is the storage account.
	AccountName string
	// Container holds the registry's objects; it is created when missing.
	Container string
	// CloudName picks the blob domain: AzurePublicCloud (default),
	// AzureUSGovernmentCloud, AzureChinaCloud or AzureGermanCloud. Ignored
	// when Endpoint is set.
	CloudName string
	// Endpoint is the blob service URL, account included, replacing the
	// one CloudName implies: https://ACCOUNT.blob.example.net, or
	// http://127.0.0.1:10000/devstoreaccount1 for Azurite.
	Endpoint string
	// AccountKey is the account's shared key; empty means the Azure
	// default credential chain (environment, workload identity, managed
	// identity, Azure CLI).
	AccountKey string
}

// azureCloudDomains maps the operator's cloudName values to their blob
// service domains.
var azureCloudDomains = map[string]string{
	"AzurePublicCloud":       "blob.core.windows.net",
	"AzureUSGovernmentCloud": "blob.core.usgovcloudapi.net",
	"AzureChinaCloud":        "blob.core.chinacloudapi.cn",
	"AzureGermanCloud":       "blob.core.cloudapi.de",
}

// OpenAzure opens (creating if needed) the container and returns a Backend
// over it and the Closer that releases it.
func OpenAzure(ctx context.Context, c AzureConfig) (Backend, io.Closer, error) {
	if c.AccountName == "" || c.Container == "" {
		return nil, nil, errors.New("storage: azure: accountName and container are required")
	}
	svc := strings.TrimSuffix(c.Endpoint, "/")
	if svc == "" {
		cloud := c.CloudName
		if cloud == "" {
			cloud = "AzurePublicCloud"
		}
		domain, ok := azureCloudDomains[cloud]
		if !ok {
			return nil, nil, fmt.Errorf("storage: azure: cloudName %q is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud (set endpoint for another cloud)", c.CloudName)
		}
		svc = "https://" + c.AccountName + "." + domain
	}
	containerURL, err := url.JoinPath(svc, c.Container)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: azure: endpoint %q: %w", c.Endpoint, err)
	}
	var client *container.Client
	if c.AccountKey != "" {
		cred, err := container.NewSharedKeyCredential(c.AccountName, c.AccountKey)
		if err != nil {
			return nil, nil, fmt.Errorf("storage: azure: account key: %w", err)
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("storage: azure: %w", err)
		}
	} else {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, nil, fmt.Errorf("storage: azure: no account key and no default credential: %w", err)
		}
		client, err = container.NewClient(containerURL, cred, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("storage: azure: %w", err)
		}
	}
	if err := ensureContainer(ctx, client, c.Container); err != nil {
		return nil, nil, err
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: azure: %w", err)
	}
	return NewBucket(b), b, nil
}

// ensureContainer creates the container when the service says it does not
// exist. A credential allowed only blob operations may be refused the
// container's properties; that is no reason to stop here.
func ensureContainer(ctx context.Context, client *container.Client, name string) error {
	_, err := client.GetProperties(ctx, nil)
	switch {
	case err == nil, bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch, bloberror.InsufficientAccountPermissions):
		return nil
	case !bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("storage: azure: container %q cannot be reached or read: %w", name, err)
	}
	if _, err := client.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("storage: azure: container %q does not exist and could not be created: %w", name, err)
	}
	return nil
}
