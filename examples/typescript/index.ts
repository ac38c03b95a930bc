// The broadcast system as one component in a TypeScript stack (docs/package.md). Enumerated
// arguments take their values as strings: the generated SDK types them as unions of those values.
import * as pulumi from "@pulumi/pulumi";
import * as broadcast from "@pulumi/broadcast";

const config = new pulumi.Config();

const system = new broadcast.BroadcastSystem("broadcast", {
    location: "westeurope",
    environment: "prod",
    workload: "bcastts",
    signalrSku: "Standard_S1",
    signalrUnits: 2,
    sqlSku: "GP_Gen5_2",
    sqlZoneRedundant: true,
    storageRedundancy: "ZRS",
    alertEmails: [config.require("oncallEmail")],
    corsOrigins: ["https://broadcast.example.com"],
    deployerPrincipalType: "ServicePrincipal",
});

export const siteUrl = system.siteUrl;
export const apiBaseUrl = system.apiBaseUrl;
export const hubName = system.hubName;
export const publishKey = system.publishKey;
