output "vpc_id" {
  description = "VPC of the application."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Subnets the instances run in."
  value       = aws_subnet.private[*].id
}

output "autoscaling_group_name" {
  description = "Auto Scaling group of the instances."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "Launch template (IMDSv2 required, encrypted EBS, no key pair)."
  value       = aws_launch_template.this.id
}

output "launch_template_version" {
  description = "Version the group uses."
  value       = aws_launch_template.this.latest_version
}

output "instance_ids" {
  description = "Instances running when the build finished."
  value       = data.aws_instances.this.ids
}

output "instance_security_group_id" {
  description = "Security group of the instances."
  value       = aws_security_group.instances.id
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (null without one)."
  value       = var.expose_alb ? aws_lb.this[0].dns_name : null
}
